"""Per-sample gradients of the cross-entropy loss, vectorised with ``torch.func``.

Semantics (those of the official GradSign loop): every sample is its own batch of one, the model
is in train mode, so each BatchNorm normalises with *that sample's* statistics, and the loss is
``cross_entropy(model(x_i[None]), y_i[None])`` (or, with ``objective="logit_sum"``, the sum of
the sample's logits, the scalar of the usual empirical NTK). Inside :func:`torch.func.vmap`
each sample is likewise a batch of one, so both paths compute the same function; they differ only
in float rounding. Layers that act per sample anyway (LayerNorm, GroupNorm, grouped/depthwise
convs, attention, embeddings, activations) need nothing special.

While gradients are taken (:func:`per_sample_mode`, used by every function here):

* train-mode BatchNorm runs without running statistics, which leaves the normalisation unchanged
  (train mode always uses the batch statistics) and keeps the model's buffers untouched; a
  train-mode BatchNorm that would see a single value per channel in a batch of one (BatchNorm1d
  on ``(N, C)`` features) raises :class:`~zcnas.exceptions.ScoreError` naming the module, as the
  official loop cannot run there either;
* **dropout is disabled**: every ``nn.Dropout*`` module is put in eval mode and the attention
  dropout of ``nn.MultiheadAttention`` is set to 0, restored afterwards (the rest of the model
  stays in train mode). Per-sample masks would differ between the vectorised path and the loop
  (and between runs of either), and a random mask at initialisation only adds noise to a
  per-sample gradient. Randomness the model draws itself (``F.dropout(..., training=True)``,
  ``scaled_dot_product_attention(dropout_p > 0)``, ``torch.rand`` in ``forward``) cannot be
  switched off from outside: ``vmap`` refuses it, and the score fails with a ``ScoreError``
  saying so;
* ``F.scaled_dot_product_attention`` uses its math backend (plain matmul and softmax, which vmap
  batches; the fused CPU kernel has no batching rule) in both paths.

Anything else ``vmap`` cannot run (``.item()``, data-dependent Python control flow, in-place
updates of buffers in ``forward``) fails as a one-line ``ScoreError`` naming the cause.

The default parameter set is the GradSign one (:func:`conv_linear_weights`): the ``weight`` of
every convolution (``nn.Conv1d/2d/3d`` and transposed) and ``nn.Linear``, and the input
projections of ``nn.MultiheadAttention`` (``in_proj_weight``, or ``q/k/v_proj_weight``), which
are Linear layers stored as bare parameters; no biases, no normalisation parameters, no
embeddings, tokens or layer scales.

APIs:
    :func:`stream_per_sample_grads`  chunks of per-sample grads handed to a reducer (bounded memory).
    :func:`per_sample_gram`          the N x N Gram matrix K_ij = <g_i, g_j>, accumulated per layer.
    :func:`loop_per_sample_grads`    the plain batch-1 forward/backward loop (reference, slow).
A chunk that raises ``torch.OutOfMemoryError`` is retried with half the chunk size.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import ExitStack
from contextlib import contextmanager
import logging
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call
from torch.func import grad
from torch.func import vmap
from torch.nn.attention import SDPBackend
from torch.nn.attention import sdpa_kernel
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd

from zcnas.data import Batch
from zcnas.exceptions import ScoreError


_logger = logging.getLogger(__name__)

#: name -> per-sample gradients of that parameter, shape (chunk, *param.shape)
Grads = dict[str, torch.Tensor]
#: called with the grads of samples ``start .. start + len`` of the batch
Reducer = Callable[[Grads, int], None]
#: the per-sample scalar differentiated: cross-entropy (default) or the sum of the logits
Objective = Literal["ce", "logit_sum"]
OBJECTIVES = ("ce", "logit_sum")


def objective_value(out: torch.Tensor, target: torch.Tensor, objective: Objective) -> torch.Tensor:
    """The scalar whose gradient is taken for one sample (``out`` has a batch dim of 1)."""
    if objective == "ce":
        return F.cross_entropy(out, target)
    if objective == "logit_sum":
        return out.sum()
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


#: the bare Linear weights of nn.MultiheadAttention (packed, or separate when kdim/vdim differ)
MHA_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")


def conv_linear_weights(model: nn.Module) -> list[str]:
    """The GradSign parameter set, in module order: the ``weight`` of every convolution
    (``_ConvNd``: Conv1d/2d/3d and transposed) and ``nn.Linear`` (with subclasses such as
    ``nn.MultiheadAttention.out_proj``), and the input projections of ``nn.MultiheadAttention``.

    On NAS-Bench-201 (only Conv2d and Linear) this is the official code's set. A parameter shared
    by several modules is listed once, under its ``named_parameters`` name.
    """
    canonical = {id(p): n for n, p in model.named_parameters()}
    names: list[str] = []
    seen: set[str] = set()
    for mod in model.modules():
        if isinstance(mod, (_ConvNd, nn.Linear)):
            found = [mod.weight]
        elif isinstance(mod, nn.MultiheadAttention):
            found = [getattr(mod, attr) for attr in MHA_WEIGHTS]
        else:
            continue
        for p in found:
            key = canonical.get(id(p)) if isinstance(p, nn.Parameter) else None
            if key is not None and key not in seen:
                seen.add(key)
                names.append(key)
    return names


def all_parameters(model: nn.Module) -> list[str]:
    """Names of every trainable parameter."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


@contextmanager
def per_sample_batchnorm(model: nn.Module) -> Iterator[None]:
    """Run train-mode BatchNorm without running statistics for the duration, then restore them.

    Train-mode BN normalises with the current batch's statistics either way, so outputs do not
    change; what changes is that nothing is updated in place, which ``vmap`` requires and which
    keeps the model's buffers as they were. A train-mode BN whose batch-of-one input has a single
    value per channel raises :class:`ScoreError` (PyTorch cannot normalise it).
    """
    saved = []
    for mod in model.modules():
        if isinstance(mod, _BatchNorm) and mod.training:
            saved.append((mod, mod.track_running_stats, mod.running_mean, mod.running_var,
                          mod.num_batches_tracked))
            mod.track_running_stats = False
            mod.running_mean = None
            mod.running_var = None
            mod.num_batches_tracked = None
    try:
        with single_value_guards(model, PER_SAMPLE_LEAD, PER_SAMPLE_FIX):
            yield
    finally:
        for mod, track, mean, var, count in saved:
            mod.track_running_stats = track
            mod.running_mean = mean
            mod.running_var = var
            mod.num_batches_tracked = count


PER_SAMPLE_LEAD = "per-sample gradients run each sample as a batch of one, so"
PER_SAMPLE_FIX = ("normalise per sample there (LayerNorm, GroupNorm) or use a proxy without "
                  "per-sample gradients")


@contextmanager
def single_value_guards(model: nn.Module, lead: str, fix: str) -> Iterator[None]:
    """For the duration, a train-mode BatchNorm about to normalise a single value per channel
    (PyTorch cannot) raises :class:`ScoreError` "``lead`` train-mode <BN> '<name>' would
    normalise a single value per channel (input <shape>); ``fix``" instead of torch's error."""

    def guard_of(name: str) -> Callable[[nn.Module, tuple], None]:
        def guard(mod: nn.Module, args: tuple) -> None:
            x = args[0]
            if x.dim() >= 2 and x.numel() <= x.shape[1]:
                raise ScoreError(f"{lead} train-mode {type(mod).__name__} '{name}' would "
                                 f"normalise a single value per channel (input "
                                 f"{tuple(x.shape)}); {fix}")

        return guard

    handles = [mod.register_forward_pre_hook(guard_of(name or type(mod).__name__))
               for name, mod in model.named_modules()
               if isinstance(mod, _BatchNorm) and mod.training]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def dropout_disabled(model: nn.Module) -> Iterator[None]:
    """Put every train-mode ``nn.Dropout*`` module in eval mode and set the attention dropout of
    every ``nn.MultiheadAttention`` to 0 for the duration; restore both afterwards. Nothing else
    changes mode (BatchNorm stays in train mode)."""
    dropouts = [m for m in model.modules() if isinstance(m, _DropoutNd) and m.training]
    attention = [(m, m.dropout) for m in model.modules()
                 if isinstance(m, nn.MultiheadAttention) and m.dropout]
    for d in dropouts:
        d.training = False
    for a, _p in attention:
        a.dropout = 0.0
    try:
        yield
    finally:
        for d in dropouts:
            d.training = True
        for a, p in attention:
            a.dropout = p


@contextmanager
def per_sample_mode(model: nn.Module) -> Iterator[None]:
    """The conditions under which per-sample gradients are taken (see the module docstring):
    :func:`per_sample_batchnorm`, :func:`dropout_disabled` and the math SDPA backend."""
    with ExitStack() as stack:
        stack.enter_context(per_sample_batchnorm(model))
        stack.enter_context(dropout_disabled(model))
        stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        yield


def _resolve(model: nn.Module, names: Sequence[str] | None) -> list[str]:
    return list(conv_linear_weights(model) if names is None else names)


def _vmap_chunk(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                names: Sequence[str], objective: Objective = "ce") -> Grads:
    """Per-sample gradients of the selected parameters for one chunk (one ``vmap`` call)."""
    params = dict(model.named_parameters())
    wanted = {n: params[n].detach() for n in names}
    # everything else enters as a constant, so no autograd graph is recorded for it
    fixed = {n: p.detach() for n, p in params.items() if n not in wanted}
    fixed.update({n: b for n, b in model.named_buffers()})

    def loss(w: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**fixed, **w}, (x.unsqueeze(0),))
        return objective_value(out, y.unsqueeze(0), objective)

    try:
        with torch.no_grad():  # torch.func.grad still differentiates; no outer graph is kept
            return vmap(grad(loss), in_dims=(None, 0, 0))(wanted, inputs, targets)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as exc:  # what vmap cannot batch: say so in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "random operation" in first:
            raise ScoreError(
                "per-sample gradients need a deterministic forward, but the model draws random "
                "numbers itself (functional dropout or torch.rand in forward); use nn.Dropout "
                "modules, which zcnas disables while scoring"
            ) from exc
        raise ScoreError(
            f"torch.func.vmap cannot compute this model's per-sample gradients ({first[:200]}); "
            f"make forward vmap-compatible (no .item(), no data-dependent Python control flow)"
        ) from exc


def _oom_halve(chunk: int, exc: BaseException, device: torch.device) -> int:
    if chunk <= 1:
        raise exc
    if device.type == "cuda":
        torch.cuda.empty_cache()
    new = (chunk + 1) // 2
    _logger.info("out of memory with %d samples per chunk; retrying with %d", chunk, new)
    return new


def stream_per_sample_grads(model: nn.Module, batch: Batch, reduce: Reducer, *,
                            chunk_size: int | None = None,
                            names: Sequence[str] | None = None,
                            objective: Objective = "ce") -> int:
    """Compute per-sample gradients chunk by chunk and hand each chunk to ``reduce``.

    ``reduce(grads, start)`` gets a dict name -> tensor (chunk, *shape) for samples
    ``start .. start + chunk`` and must not keep it (the memory is freed for the next chunk), so
    peak memory is one chunk's gradients, not N x m. A chunk that runs out of memory is retried
    with half the size (down to 1); chunks already reduced are kept. ``chunk_size=None`` means
    the whole batch in one go. ``names`` defaults to :func:`conv_linear_weights`.

    Returns the chunk size finally used.
    """
    names = _resolve(model, names)
    n = len(batch)
    chunk = max(1, min(int(chunk_size or n), n))
    start = 0
    with per_sample_mode(model):
        while start < n:
            stop = min(start + chunk, n)
            try:
                grads = _vmap_chunk(model, batch.inputs[start:stop], batch.targets[start:stop],
                                    names, objective=objective)
            except torch.OutOfMemoryError as exc:
                chunk = _oom_halve(chunk, exc, batch.inputs.device)
                continue
            reduce(grads, start)
            del grads
            start = stop
    return chunk


def loop_per_sample_grads(model: nn.Module, batch: Batch, reduce: Reducer, *,
                          names: Sequence[str] | None = None,
                          objective: Objective = "ce") -> None:
    """Reference: one batch-1 forward and backward per sample (the official GradSign loop).

    Calls ``reduce(grads, i)`` with tensors of shape (1, *shape) for sample ``i``. A parameter
    that gets no gradient (``None``) is reported as zeros.
    """
    names = _resolve(model, names)
    params = dict(model.named_parameters())
    wanted = [params[n] for n in names]
    with per_sample_mode(model):
        for i in range(len(batch)):
            out = model(batch.inputs[i:i + 1])
            loss = objective_value(out, batch.targets[i:i + 1], objective)
            grads = torch.autograd.grad(loss, wanted, allow_unused=True)
            reduce({
                n: (torch.zeros_like(p) if g is None else g).unsqueeze(0)
                for n, p, g in zip(names, wanted, grads)
            }, i)


def per_sample_gram(model: nn.Module, batch: Batch, *, chunk_size: int | None = None,
                    names: Sequence[str] | None = None,
                    objective: Objective = "ce") -> torch.Tensor:
    """The N x N Gram matrix ``K_ij = <g_i, g_j>`` of the flattened per-sample gradients (float64).

    Accumulated layer by layer as ``K += G_l G_l^T``; N x m is never concatenated. With one chunk
    (``chunk_size=None`` or >= N, the default) this costs one vectorised pass. With c chunks the
    off-diagonal blocks need both chunks at once, and chunk gradients are recomputed instead of
    stored: c(c+1)/2 chunk passes, memory two chunks. Out-of-memory halves the chunk size and
    starts over.
    """
    names = _resolve(model, names)
    n = len(batch)
    chunk = max(1, min(int(chunk_size or n), n))
    x, y = batch.inputs, batch.targets
    with per_sample_mode(model):
        while True:
            try:
                return _gram_blocks(model, x, y, names, chunk, objective)
            except torch.OutOfMemoryError as exc:
                chunk = _oom_halve(chunk, exc, x.device)


def _block(a: Grads, b: Grads | None) -> torch.Tensor:
    out = None
    for name, ga in a.items():
        fa = ga.flatten(1)
        prod = fa @ (fa if b is None else b[name].flatten(1)).T
        out = prod.double() if out is None else out.add_(prod.double())
    assert out is not None
    return out


def _gram_blocks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: Sequence[str],
                 chunk: int, objective: Objective) -> torch.Tensor:
    n = x.shape[0]
    gram = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    for i, (a0, a1) in enumerate(bounds):
        ga = _vmap_chunk(model, x[a0:a1], y[a0:a1], names, objective=objective)
        gram[a0:a1, a0:a1] = _block(ga, None)
        for b0, b1 in bounds[:i]:
            gb = _vmap_chunk(model, x[b0:b1], y[b0:b1], names, objective=objective)
            blk = _block(ga, gb)
            gram[a0:a1, b0:b1] = blk
            gram[b0:b1, a0:a1] = blk.T
            del gb
        del ga
    return (gram + gram.T) / 2  # diagonal blocks are symmetric only up to rounding


def loop_per_sample_matrix(model: nn.Module, batch: Batch, *,
                           names: Sequence[str] | None = None,
                           objective: Objective = "ce") -> torch.Tensor:
    """Reference: the N x m matrix of flattened per-sample gradients from the plain loop."""
    rows: list[torch.Tensor] = []

    def keep(grads: Grads, _start: int) -> None:
        rows.append(torch.cat([g.flatten(1) for g in grads.values()], dim=1))

    loop_per_sample_grads(model, batch, keep, names=names, objective=objective)
    return torch.cat(rows)
