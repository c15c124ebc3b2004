"""Float32 per-sample gradients against the exact (float64) ones, under a float32 error model.

Why raw agreement fractions cannot work. A float32 per-sample gradient differs from the exact one
in two ways, and only the first is small:

1. *Smooth rounding.* Every float32 operation returns ``op(x) (1 + d)`` with ``|d| <= u = 2^-24``;
   through a network these errors add up to ``O(u x growth)`` relative to the magnitude of the
   terms, which is tiny except where the result cancels (single-sample BatchNorm backward).
2. *Kink choices.* ReLU-like activations have kinks (ReLU, ReLU6 at 0 and 6, Hardswish at +-3).
   A pre-activation within float32 forward rounding of a kink may land on either side, and then
   the derivative there is 0 or 1: the sample's gradient jumps by the whole contribution of that
   unit, ``dL/dy_j * dx_j/dtheta``, which is about ``1/sqrt(units of the layer)`` relative (~2% on
   NB201's 64 x 8 x 8 maps) and flips every sign below it. With ~1e5-1e6 ReLU units a sample,
   about one sample in four has such a unit, whichever CPU; which side each path picks depends on
   the kernels (the vmap and the loop paths block their sums differently). That is why
   ``8895132 / 8905472`` signs agreed on one machine and more on another.

The check therefore compares each float32 path with the exact gradient *of the function it
evaluated*: a float64 batch-1 run whose kinks are forced to the sides that path chose (forcing
changes no forward value; it sets the derivative by adding ``(s' - s) (x - x.detach())``). What
remains is smooth rounding only, bounded from the error model:

* its scale ``e_il`` for sample i and parameter tensor l is estimated by Monte Carlo arithmetic
  (Parker 1997): the float64 run repeated with every aten op's result multiplied by
  ``1 + U(-u, u)`` (forward and backward, :class:`RoundingNoise`), ``e_il`` the RMS over l of the
  change. This models one float32 rounding per op *result*; a length-n reduction in float32
  rounds its partial sums as well, which adds ``O(sqrt(n / block))`` (a few to ~8 for the
  reductions here, blocked sums of at most ~1e4 terms), and the largest of up to ~1e7 entries
  sits ``sqrt(2 ln 1e7) ~ 6`` standard deviations out. ``K_SMOOTH = 64 >= 8 x 6`` covers both;
* a sign is *decided* where ``|g_exact| > K_SMOOTH e_il`` (or where the gradient is a structural
  zero, exactly 0 with and without noise); every decided sign of a float32 path must equal the
  exact one, with no exception. The dead zone is ~1e-4 of the RMS, so a real bug (batch instead
  of per-sample statistics, a missing layer, a wrong loss) violates it on a large fraction of the
  entries;
* each kink a float32 path put on the other side than float64 must be a rounding choice: within
  ``K_KINK e_fwd`` of the kink, ``e_fwd`` the Monte Carlo forward error of that activation call
  (RMS over its units), ``K_KINK = 64`` for the same reasons as ``K_SMOOTH``.

Between the two float32 paths, per-weight sign counts are compared over the entries decided for
both whose exact signs agree under both paths' kink choices; they must be equal. Each remaining
(undecided) entry moves a GradSign score by at most 2, so ``|S_vmap - S_loop| <= 2 x undecided``.

Gram matrices (GradAlign, LGA) follow from the same model: ``|K_ij - K*_ij| <= K_SMOOTH (e_i
|g_j| + |g_i| e_j) + sqrt(m) u K_SMOOTH |g_i| |g_j|`` (the last term rounds the float32 dot product
of length m), and the scores' bounds follow from first-order perturbation of their formulas
(:func:`gram_score_bounds`).

Only activations given as modules are modelled (``nn.ReLU``, ``nn.Hardtanh``/``nn.ReLU6``,
``nn.Hardswish``, ``nn.LeakyReLU``); models checked here must not hide kinks in functional calls
or max-pooling.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
import math

import torch
from torch import nn
import torch.func
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from zcnas.data import Batch
from zcnas.proxies import _persample


U32 = 2.0 ** -24
K_SMOOTH = 64.0
K_KINK = 64.0

#: kink call c of sample i -> region index per unit (int8), shape (1, *unit_shape)
Regions = list[list[torch.Tensor]]
Maker = Callable[[torch.dtype], nn.Module]


# ---------------------------------------------------------------------------------------------
# kinks: where each activation's derivative jumps, with PyTorch's conventions at the kink


def _kinks(mod: nn.Module) -> tuple[float, ...]:
    if isinstance(mod, nn.ReLU):
        return (0.0,)
    if isinstance(mod, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
        return (float(mod.min_val), float(mod.max_val))
    if isinstance(mod, nn.Hardswish):
        return (-3.0, 3.0)
    if isinstance(mod, nn.LeakyReLU):
        return (0.0,)
    return ()


def _region(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Which piece of the activation each unit is on (the one autograd differentiates)."""
    if isinstance(mod, (nn.ReLU, nn.LeakyReLU)):
        return (x > 0).to(torch.int8)  # threshold_backward: derivative 1 iff x > 0
    if isinstance(mod, nn.Hardtanh):  # derivative 1 iff min < x < max
        return (x > mod.min_val).to(torch.int8) + (x >= mod.max_val).to(torch.int8)
    if isinstance(mod, nn.Hardswish):  # 0 below -3, x/3 + 1/2 on [-3, 3], 1 above 3
        return (x >= -3).to(torch.int8) + (x > 3).to(torch.int8)
    raise TypeError(type(mod).__name__)


def _slope(mod: nn.Module, x: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    if isinstance(mod, nn.ReLU):
        return torch.where(region == 1, one, zero)
    if isinstance(mod, nn.LeakyReLU):
        return torch.where(region == 1, one, one * mod.negative_slope)
    if isinstance(mod, nn.Hardtanh):
        return torch.where(region == 1, one, zero)
    if isinstance(mod, nn.Hardswish):
        return torch.where(region == 0, zero, torch.where(region == 1, x / 3 + 0.5, one))
    raise TypeError(type(mod).__name__)


def kink_distance(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([(x - c).abs() for c in _kinks(mod)]).amin(0)


class KinkHooks:
    """Hooks on every kink activation of a model: record each call's input regions (and, with
    ``keep_inputs``, the inputs as float64), and optionally force the regions of sample ``i``
    (counted by root forwards) to ``force[i]``. In-place activations run out of place meanwhile."""

    def __init__(self, model: nn.Module, *, keep_inputs: bool = False,
                 force: Regions | None = None, count_samples: bool = True) -> None:
        self.model = model
        self.keep_inputs = keep_inputs
        self.force = force
        self.count_samples = count_samples
        self.regions: list[torch.Tensor] = []  # this forward's calls (reset per root forward)
        self.modules: list[nn.Module] = []     # the module of each call of the last forward
        self.samples: Regions = []
        self.inputs: list[list[torch.Tensor]] = []
        self.sample = -1
        self._handles: list = []
        self._inplace: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> KinkHooks:
        if self.count_samples:
            self._handles.append(self.model.register_forward_pre_hook(self._root))
        for mod in self.model.modules():
            if _kinks(mod):
                if getattr(mod, "inplace", False):
                    self._inplace.append((mod, True))
                    mod.inplace = False
                self._handles.append(mod.register_forward_hook(self._hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        for mod, flag in self._inplace:
            mod.inplace = flag
        self._finish()

    def _finish(self) -> None:
        if self.sample >= 0 and len(self.samples) == self.sample:
            self.samples.append(self.regions)

    def _root(self, _mod: nn.Module, _inp: tuple) -> None:
        self._finish()
        self.sample += 1
        self.regions = []
        self.modules = []
        if self.keep_inputs:
            self.inputs.append([])

    def _hook(self, mod: nn.Module, inp: tuple, out: torch.Tensor) -> torch.Tensor | None:
        x = inp[0]
        region = _region(mod, x.detach())
        call = len(self.regions)
        self.regions.append(region)
        self.modules.append(mod)
        if self.keep_inputs:
            self.inputs[-1].append(x.detach().double().clone())
        if self.force is None:
            return None
        wanted = self.force[self.sample][call].to(region.device)
        if torch.equal(wanted, region):
            return None
        delta = _slope(mod, x.detach(), wanted) - _slope(mod, x.detach(), region)
        return out + delta * (x - x.detach())


class RoundingNoise(TorchDispatchMode):
    """Monte Carlo arithmetic: multiply the floating result of every aten op (forward and
    backward) by ``1 + d``, ``d ~ U(-u, u)``, the float32 rounding model. The factors are read at
    random offsets from one seeded pool of ``2^20`` (much cheaper than fresh draws per op)."""

    POOL = 1 << 20

    def __init__(self, u: float = U32, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.pool = torch.empty(2 * self.POOL, dtype=torch.float64).uniform_(1 - u, 1 + u,
                                                                            generator=gen)
        self.offsets = torch.randint(0, self.POOL, (1 << 16,), generator=gen).tolist()
        self.calls = 0

    def _noise(self, t: torch.Tensor) -> torch.Tensor:
        n = t.numel()
        start = self.offsets[self.calls % len(self.offsets)]
        self.calls += 1
        reps = -(-n // self.POOL)
        flat = self.pool[start:start + min(n, self.POOL)]
        if reps > 1:
            flat = flat.repeat(reps)[:n]
        return flat.to(t.dtype).view(t.shape)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        if func.is_view:
            return out
        mutable = func._schema.is_mutable

        def perturb(t: object) -> object:
            if not (isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel()):
                return t
            return t.mul_(self._noise(t)) if mutable else t * self._noise(t)

        if isinstance(out, torch.Tensor):
            return perturb(out)
        return tree_map(perturb, out)


# ---------------------------------------------------------------------------------------------
# the float32 paths, each with its gradients and its kink choices


@dataclass
class Path:
    """Per-sample gradients (name -> (N, numel) float64 copies) and the kink regions chosen."""

    grads: dict[str, torch.Tensor]
    regions: Regions


def _collector() -> tuple[dict[str, list[torch.Tensor]], Callable[[dict, int], None]]:
    parts: dict[str, list[torch.Tensor]] = {}

    def keep(grads: dict[str, torch.Tensor], _start: int) -> None:
        for name, g in grads.items():
            parts.setdefault(name, []).append(g.detach().flatten(1).double().clone())

    return parts, keep


def _cat(parts: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {name: torch.cat(p) for name, p in parts.items()}


@contextmanager
def recording_vmap(model: nn.Module) -> Iterator[Regions]:
    """Within: ``_persample``'s vmap also returns each chunk's kink regions (as ``grad``'s aux),
    appended per sample to the yielded list. The gradients are computed exactly as without."""
    hooks = KinkHooks(model, count_samples=False)
    real_grad, real_vmap = _persample.grad, _persample.vmap
    chunks: list[list[torch.Tensor]] = []

    def grad_with_regions(fn):  # noqa: ANN001, ANN202
        def fn_aux(*args):  # noqa: ANN002, ANN202
            hooks.regions = []
            value = fn(*args)
            return value, list(hooks.regions)

        return real_grad(fn_aux, has_aux=True)

    def vmap_with_regions(fn, in_dims):  # noqa: ANN001, ANN202
        inner = real_vmap(fn, in_dims=in_dims)

        def call(*args):  # noqa: ANN002, ANN202
            grads, regions = inner(*args)
            chunks.append(regions)
            return grads

        return call

    samples: Regions = []
    _persample.grad, _persample.vmap = grad_with_regions, vmap_with_regions
    try:
        with hooks:
            yield samples
    finally:
        _persample.grad, _persample.vmap = real_grad, real_vmap
    for regions in chunks:  # each call's tensor is (chunk, 1, *shape)
        for i in range(regions[0].shape[0] if regions else 0):
            samples.append([r[i] for r in regions])


def run_vmap(model: nn.Module, batch: Batch, *, names: Sequence[str] | None = None,
             objective: _persample.Objective = "ce", chunk_size: int | None = None) -> Path:
    """The production vectorised path (``stream_per_sample_grads``), with its kink choices."""
    parts, keep = _collector()
    with recording_vmap(model) as regions:
        _persample.stream_per_sample_grads(model, batch, keep, chunk_size=chunk_size, names=names,
                                           objective=objective)
    if not regions:  # a model without kink activations
        regions.extend([] for _ in range(len(batch)))
    return Path(_cat(parts), regions)


def run_loop(model: nn.Module, batch: Batch, *, names: Sequence[str] | None = None,
             objective: _persample.Objective = "ce", force: Regions | None = None,
             keep_inputs: bool = False, noise: RoundingNoise | None = None
             ) -> tuple[Path, KinkHooks]:
    """The production batch-1 loop (``loop_per_sample_grads``), optionally with forced kink
    regions and Monte Carlo rounding noise; returns the path and (with ``keep_inputs``) the
    inputs of every kink call."""
    parts, keep = _collector()
    hooks = KinkHooks(model, keep_inputs=keep_inputs, force=force)
    with hooks:
        if noise is None:
            _persample.loop_per_sample_grads(model, batch, keep, names=names, objective=objective)
        else:
            with noise:
                _persample.loop_per_sample_grads(model, batch, keep, names=names,
                                                 objective=objective)
    return Path(_cat(parts), hooks.samples), hooks


def as_float64(batch: Batch) -> Batch:
    return Batch(batch.inputs.double(), batch.targets, batch.num_classes, batch.source)


# ---------------------------------------------------------------------------------------------
# the exact reference


@dataclass
class Reference:
    """Exact gradients under each float32 path's kink choices, and the rounding scales."""

    names: list[str]
    exact: dict[str, dict[str, torch.Tensor]]   # path -> name -> (N, numel)
    smooth: dict[str, torch.Tensor]             # name -> (N,) Monte Carlo error RMS e_il
    structural: dict[str, torch.Tensor]         # name -> (N, numel): 0 with and without noise
    kink_violations: dict[str, int]             # kinks moved farther than K_KINK e_fwd
    kinks_moved: dict[str, int]                 # kinks a path put on another side than float64


def _subset(batch: Batch, index: list[int]) -> Batch:
    return Batch(batch.inputs[index], batch.targets[index], batch.num_classes, batch.source)


def reference(make: Maker, batch: Batch, paths: dict[str, Path], *,
              names: Sequence[str] | None = None, objective: _persample.Objective = "ce",
              seed: int = 0) -> Reference:
    """Float64 batch-1 gradients with each path's kink regions forced (the first path's for all
    samples, then only the samples where another path chose differently), and the Monte Carlo
    rounding scales (see the module docstring). ``make(dtype)`` builds the same fresh model."""
    b64 = as_float64(batch)
    first = next(iter(paths.values())).regions
    kw = {"names": names, "objective": objective}
    base, hooks = run_loop(make(torch.float64), b64, force=first, keep_inputs=True, **kw)
    noisy, hooks_mc = run_loop(make(torch.float64), b64, force=first, keep_inputs=True,
                               noise=RoundingNoise(seed=seed), **kw)
    exact = {}
    for key, path in paths.items():
        differ = [i for i in range(len(batch)) if not _same(path.regions[i], first[i])]
        grads = base.grads
        if differ:
            forced = run_loop(make(torch.float64), _subset(b64, differ),
                              force=[path.regions[i] for i in differ], **kw)[0].grads
            grads = {n: g.clone() for n, g in base.grads.items()}
            for n in grads:
                grads[n][differ] = forced[n]
        exact[key] = grads
    smooth = {n: (noisy.grads[n] - g).pow(2).mean(1).sqrt() for n, g in base.grads.items()}
    structural = {n: (g == 0) & (noisy.grads[n] == 0) for n, g in base.grads.items()}
    violations, moved = {}, {}
    for key, path in paths.items():
        bad = count = 0
        for i, calls in enumerate(path.regions):
            assert len(calls) == len(hooks.modules), "the paths ran different kink activations"
            for c, region in enumerate(calls):
                mod, x = hooks.modules[c], hooks.inputs[i][c]
                differs = region.to(x.device) != _region(mod, x)
                if differs.any():
                    scale = (hooks_mc.inputs[i][c] - x).pow(2).mean().sqrt()
                    count += int(differs.sum())
                    bad += int((differs & (kink_distance(mod, x) > K_KINK * scale)).sum())
        violations[key], moved[key] = bad, count
    return Reference(list(base.grads), exact, smooth, structural, violations, moved)


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b))


# ---------------------------------------------------------------------------------------------
# signs (GradSign)


@dataclass
class SignReport:
    """Outcome of :func:`check_signs`; counts are over the N x m per-sample entries."""

    entries: int
    undecided: int
    sign_violations: dict[str, int]
    kink_violations: dict[str, int]
    kinks_moved: dict[str, int]
    count_mismatches: int
    scores: dict[str, float]
    violations_per_layer: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def undecided_fraction(self) -> float:
        return self.undecided / max(1, self.entries)

    def score_bound(self) -> float:
        """Each undecided entry moves a GradSign (sum) score by at most 2."""
        return 2.0 * self.undecided

    def assert_consistent(self, max_undecided: float) -> None:
        """No violation of the error model; ``max_undecided`` (a fraction of the entries) keeps
        the check from passing vacuously when the dead zone would swallow the gradients."""
        assert not any(self.kink_violations.values()), self
        assert not any(self.sign_violations.values()), self
        assert self.count_mismatches == 0, self
        scores = list(self.scores.values())
        assert max(scores) - min(scores) <= self.score_bound(), self
        assert self.undecided_fraction <= max_undecided, self


def check_signs(ref: Reference, paths: dict[str, Path]) -> SignReport:
    """Every decided sign of every path equals the exact one under that path's kink choices,
    and the per-weight sign counts of all paths agree over the entries decided for all of them
    whose exact signs agree under all their kink choices."""
    entries = undecided = mismatches = 0
    violations = dict.fromkeys(paths, 0)
    per_layer: dict[str, dict[str, int]] = {k: {} for k in paths}
    scores = dict.fromkeys(paths, 0.0)
    for name in ref.names:
        tau = K_SMOOTH * ref.smooth[name][:, None]
        decided_all = torch.ones_like(ref.structural[name])
        exact_signs = []
        for key, path in paths.items():
            exact = ref.exact[key][name]
            decided = (exact.abs() > tau) | ref.structural[name]
            wrong = decided & (torch.sign(path.grads[name]) != torch.sign(exact))
            violations[key] += int(wrong.sum())
            if wrong.any():
                per_layer[key][name] = int(wrong.sum())
            decided_all &= decided
            exact_signs.append(torch.sign(exact))
            scores[key] += float(torch.sign(path.grads[name]).sum(0).abs().sum())
        for other in exact_signs[1:]:
            decided_all &= other == exact_signs[0]
        counts = [(torch.sign(p.grads[name]) * decided_all).sum(0) for p in paths.values()]
        mismatches += sum(int((c != counts[0]).sum()) for c in counts[1:])
        entries += decided_all.numel()
        undecided += int((~decided_all).sum())
    return SignReport(entries, undecided, violations, dict(ref.kink_violations),
                      dict(ref.kinks_moved), mismatches, scores, per_layer)


# ---------------------------------------------------------------------------------------------
# Gram matrices (GradAlign, LGA)


def run_gram_vmap(model: nn.Module, batch: Batch, *, names: Sequence[str] | None = None,
                  objective: _persample.Objective = "ce") -> tuple[torch.Tensor, Regions]:
    """The production Gram matrix (``per_sample_gram``, one chunk) with its kink choices."""
    with recording_vmap(model) as regions:
        gram = _persample.per_sample_gram(model, batch, names=names, objective=objective)
    if not regions:
        regions.extend([] for _ in range(len(batch)))
    return gram, regions


def exact_gram(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(g @ g.T for g in grads.values())  # type: ignore[return-value]


def gram_bound(ref: Reference, key: str) -> torch.Tensor:
    """Entrywise bound on ``|K_float32 - K_exact|`` for path ``key``: per layer,
    ``|e_i| |g_j| + |g_i| |e_j|`` with ``|e_i| = K_SMOOTH sqrt(m) e_il`` (the RMS scale as an L2
    norm) plus ``K_SMOOTH sqrt(m) u |g_i| |g_j|`` for the float32 dot product itself."""
    n = len(next(iter(ref.smooth.values())))
    bound = torch.zeros(n, n, dtype=torch.float64)
    for name, g in ref.exact[key].items():
        norms = g.norm(dim=1)
        root_m = math.sqrt(g.shape[1])
        err = K_SMOOTH * root_m * ref.smooth[name]
        bound += err[:, None] * norms[None, :] + norms[:, None] * err[None, :]
        bound += K_SMOOTH * root_m * U32 * norms[:, None] * norms[None, :]
    return bound


def score_bounds(gram: torch.Tensor, bound: torch.Tensor, eps: float) -> dict[str, float]:
    """How far each Gram-based score may move when every ``K_ij`` moves by at most
    ``bound_ij`` (first order, doubled for the second-order rest):

    * cosines ``G_ij = K_ij / sqrt(K_ii K_jj)``:
      ``|dG_ij| <= b_ij / sqrt(K_ii K_jj) + |G_ij| (b_ii / K_ii + b_jj / K_jj) / 2``;
    * GradAlign-II ``logdet(G + eps I)``: ``|tr(A^-1 dA)| <= |A^-1|_2 sqrt(N) |dG|_F``;
    * GradAlign-I ``sqrt(sum G) / n``: ``sum |dG| / (2 n sqrt(sum G))`` over live samples;
    * LGA, Pearson of ``vec K`` with a fixed ``vec Y``: ``2 |dK|_F / |K - mean K|_F``.
    """
    diag = gram.diagonal()
    live = diag > 0
    inv = torch.where(live, diag.clamp_min(1e-300).rsqrt(), torch.zeros_like(diag))
    cos = gram * inv[:, None] * inv[None, :]
    rel = torch.where(live, bound.diagonal() / diag.clamp_min(1e-300), torch.zeros_like(diag))
    dcos = bound * inv[:, None] * inv[None, :] + cos.abs() * (rel[:, None] + rel[None, :]) / 2
    a = cos + eps * torch.eye(len(cos), dtype=cos.dtype)
    logdet = float(torch.linalg.eigvalsh(a)[0].reciprocal()) * math.sqrt(len(a)) * float(dcos.norm())
    n = int(live.sum())
    total = float(cos[live][:, live].sum())
    align = float(dcos[live][:, live].sum()) / (2 * n * math.sqrt(total)) if n and total > 0 \
        else math.inf
    lga = 2 * float(bound.norm()) / float((gram - gram.mean()).norm())
    return {"gram": 2 * logdet, "alignment": 2 * align, "lga": 2 * lga}


@dataclass
class GramReport:
    """Worst ``|K_float32 - K_exact| / bound`` per path (the model holds if <= 1) and the
    largest bound relative to the diagonal (the check says something only if that is small)."""

    worst: dict[str, float]
    relative_bound: float

    def assert_consistent(self, max_relative: float) -> None:
        assert max(self.worst.values()) <= 1.0, self
        assert self.relative_bound <= max_relative, self


def check_gram(ref: Reference, grams: dict[str, torch.Tensor]) -> GramReport:
    worst, rel = {}, 0.0
    for key, gram in grams.items():
        exact = exact_gram(ref.exact[key])
        bound = gram_bound(ref, key)
        worst[key] = float(((gram - exact).abs() / bound.clamp_min(1e-300)).max())
        diag = exact.diagonal()
        rel = max(rel, float((bound.diagonal() / diag.clamp_min(1e-300)).max()))
    return GramReport(worst, rel)


@dataclass
class GramCheck:
    """The float32 Gram matrices of the vmap path (``per_sample_gram``) and of the loop, the
    exact ones under their kink choices, and the entrywise bounds."""

    grams: dict[str, torch.Tensor]
    exact: dict[str, torch.Tensor]
    bounds: dict[str, torch.Tensor]
    report: GramReport

    def score_bound(self, key: str, score: str, eps: float = 1e-3) -> float:
        return score_bounds(self.exact[key], self.bounds[key], eps)[score]


def check_gram_paths(make: Maker, batch: Batch, *, names: Sequence[str],
                     objective: _persample.Objective) -> GramCheck:
    gram, regions = run_gram_vmap(make(torch.float32), batch, names=names, objective=objective)
    loop = run_loop(make(torch.float32), batch, names=names, objective=objective)[0]
    flat = torch.cat(list(loop.grads.values()), dim=1)
    grams = {"vmap": gram, "loop": flat @ flat.T}  # the loop reference works in float64 too
    ref = reference(make, batch, {"vmap": Path({}, regions), "loop": loop}, names=names,
                    objective=objective)
    exact = {k: exact_gram(ref.exact[k]) for k in grams}
    bounds = {k: gram_bound(ref, k) for k in grams}
    return GramCheck(grams, exact, bounds, check_gram(ref, grams))


def first_samples(batch: Batch, n: int) -> Batch:
    return Batch(batch.inputs[:n], batch.targets[:n], batch.num_classes, f"first {n}")
