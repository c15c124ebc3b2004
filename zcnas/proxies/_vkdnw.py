"""VKDNW (Tybl & Neumann, "Training-free Neural Architecture Search through Variance of Knowledge
of Deep Network Weights", CVPR 2025, arXiv 2502.04975): entropy of the Fisher-information
spectrum at initialisation.

Semantics follow the authors' NB201 code, ``ondratybl/VKDNW``
``NB201/ZeroShotProxy/compute_vkdnw_score.py`` (``get_fisher``, ``cholesky_covariance``,
``get_jacobian_index``, ``compute_nas_score``) and ``NB201/tss_utils.py`` (``get_scores``):
He-normal fan_in re-initialisation, the network in **eval** mode (fresh BatchNorm running
statistics, so every sample is independent), real images, one scalar weight per parameter
tensor (flat index 0 of each ``named_parameters()`` entry).
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Literal

import torch
from torch import nn
import torch.nn.functional as F

from zcnas.data import Batch
from zcnas.exceptions import ScoreError
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._inits import kaiming_normal_init
from zcnas.proxies._registry import register_proxy
from zcnas.proxies._shared import SharedResults
from zcnas.proxies._shared import state_fingerprint


VKDNW_PAPER = "Tybl & Neumann, VKDNW, CVPR 2025 (arXiv 2502.04975)"
VARIANTS = ("single", "entropy")
FISHERS = ("authors", "exact")
_BN = nn.modules.batchnorm._BatchNorm
_SHARED = SharedResults()


def multinomial_cholesky(prob: torch.Tensor) -> torch.Tensor:
    """Lower-triangular L (N, C, C) with L L^T = diag(p) - p p^T for each row p of ``prob``.

    The explicit factor of the multinomial covariance (Tanabe & Sagae, 1992) the authors use
    (``cholesky_covariance``): with q_k = 1 - sum_{i<=k} p_i (q_0 = 1),
    L_kk = d_k = sqrt(p_k q_k / q_{k-1}) and L_ik = -p_i d_k / q_k for i > k (0 where q_k = 0).
    The covariance is singular (rows sum to 0), so torch's Cholesky does not apply.
    """
    n, c = prob.shape
    q = 1 - torch.cumsum(prob, dim=1)
    q[:, -1] = 0
    q_prev = torch.cat([torch.ones_like(q[:, :1]), q[:, :-1]], dim=1)
    d = torch.sqrt(torch.clamp(prob * q / q_prev, min=0))
    ratio = torch.where(q > 0, 1 / torch.where(q > 0, q, torch.ones_like(q)), torch.zeros_like(q))
    lower = -prob[:, :, None] * ratio[:, None, :]  # L_ik before scaling, i = row, k = column
    eye = torch.eye(c, dtype=prob.dtype, device=prob.device)
    lower = torch.tril(lower, diagonal=-1) + eye
    return lower * d[:, None, :]


def smoothed_softmax(logits: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """``(1 - alpha) softmax + alpha / C`` (the authors' smoothing before the Cholesky factor)."""
    return F.softmax(logits, dim=1) * (1 - alpha) + alpha / logits.shape[1]


def _entry_grad_fn(mod: nn.Module, pname: str, inp: torch.Tensor
                   ) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Per-sample d(out)/d(param.flatten()[0]) contracted with the output gradient g, i.e. the
    function g -> (N,) giving the gradient of the backpropagated scalar w.r.t. that entry."""
    if isinstance(mod, nn.Conv2d):
        if pname == "bias":
            return lambda g: g[:, 0].sum(dim=(1, 2))
        if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
            return None
        ph, pw = mod.padding
        sh, sw = mod.stride
        xp = F.pad(inp[:, :1], (pw, pw, ph, ph))

        def conv_w(g: torch.Tensor) -> torch.Tensor:
            ho, wo = g.shape[2:]
            patch = xp[:, 0, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]
            return (g[:, 0] * patch).sum(dim=(1, 2))

        return conv_w
    if isinstance(mod, nn.Linear):
        if pname == "bias":
            return lambda g: g[..., 0].reshape(g.shape[0], -1).sum(1)
        x0 = inp[..., 0]
        return lambda g: (g[..., 0] * x0).reshape(g.shape[0], -1).sum(1)
    if isinstance(mod, _BN) and mod.running_mean is not None and not mod.training:
        if pname == "bias":
            return lambda g: g[:, 0].reshape(g.shape[0], -1).sum(1)
        assert mod.running_var is not None  # registered with running_mean
        xhat = (inp[:, 0] - mod.running_mean[0]) / torch.sqrt(mod.running_var[0] + mod.eps)
        return lambda g: (g[:, 0] * xhat).reshape(g.shape[0], -1).sum(1)
    return None


def entry_jacobian(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(J, logits)``: J (N, C, P) = d logit_{n,c} / d theta_p for the P scalars theta_p = flat
    entry 0 of every parameter tensor (``named_parameters()`` order), at ``model`` in eval mode.

    One forward pass and C backward passes of the summed class-c logit; each entry's per-sample
    gradient is read off the module output gradient by a hook (samples are independent in eval
    mode, so the batch-summed backward gives per-sample values). Supports parameters of
    Conv2d (zero padding), Linear and eval-mode BatchNorm with running statistics.
    """
    full_name: dict[tuple[int, str], str] = {}
    for mname, mod in model.named_modules(remove_duplicate=False):
        for pname, _ in mod.named_parameters(recurse=False):
            full_name.setdefault((id(mod), pname), f"{mname}.{pname}" if mname else pname)
    names = [n for n, _ in model.named_parameters()]
    index = {n: i for i, n in enumerate(names)}
    flags = [p.requires_grad for p in model.parameters()]
    n = inputs.shape[0]
    col: torch.Tensor | None = None  # (N, P) gradients of the current class
    handles = []

    def forward_hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            return
        for pname, _ in mod.named_parameters(recurse=False):
            full = full_name[(id(mod), pname)]
            if full not in index:
                continue
            fn = _entry_grad_fn(mod, pname, args[0].detach())
            if fn is None:
                raise ScoreError(f"vkdnw reads per-sample gradients of parameters of Conv2d "
                                 f"(zero padding), Linear and eval-mode BatchNorm modules; "
                                 f"{full} belongs to {type(mod).__name__}")
            j = index[full]

            def grad_hook(g: torch.Tensor, fn=fn, j=j) -> None:
                assert col is not None
                col[:, j] += fn(g.detach()).to(col.dtype)

            out.register_hook(grad_hook)

    try:
        for p in model.parameters():
            p.requires_grad_(False)
        handles = [m.register_forward_hook(forward_hook) for m in model.modules()
                   if any(True for _ in m.parameters(recurse=False))]
        x = inputs.detach().clone().requires_grad_(True)
        logits = model(x)
        jac = torch.zeros(n, logits.shape[1], len(names), dtype=torch.float64, device=x.device)
        for c in range(logits.shape[1]):
            col = torch.zeros(n, len(names), dtype=torch.float64, device=x.device)
            torch.autograd.grad(logits[:, c].sum(), x, retain_graph=c + 1 < logits.shape[1])
            jac[:, c] = col
    finally:
        for h in handles:
            h.remove()
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return jac, logits.detach()


def fisher_matrix(jac: torch.Tensor, logits: torch.Tensor, fisher: str = "authors") -> torch.Tensor:
    """Empirical Fisher ``F = mean_n A_n^T A_n`` (P x P, float64) from J (N, C, P).

    ``"authors"``: A_n = L_n J_n, as ``get_fisher(use_logits=False)`` multiplies the Jacobian by
    the factor from the left; ``"exact"``: A_n = L_n^T J_n, so F = mean_n J_n^T Cov_n J_n, the
    Fisher information of the (smoothed) predictive distribution. L_n is
    :func:`multinomial_cholesky` of :func:`smoothed_softmax` (logits_n).
    """
    chol = multinomial_cholesky(smoothed_softmax(logits.double()))
    if fisher == "exact":
        chol = chol.transpose(1, 2)
    a = chol @ jac.double()
    return torch.einsum("ncp,ncq->pq", a, a) / jac.shape[0]


def decile_entropy(fisher: torch.Tensor) -> float:
    """``-sum_k l_k log(l_k + 1e-10)``, l = q / (sum q + 1e-10), q_k the k/10-quantiles (k = 1..9,
    linear interpolation) of the Fisher eigenvalue magnitudes (the singular values the authors
    take with ``torch.svd``)."""
    lam = torch.linalg.eigvalsh(fisher).abs()
    q = torch.quantile(lam, torch.arange(1, 10, dtype=lam.dtype, device=lam.device) / 10)
    t = q / (q.sum() + 1e-10)
    return float(-(t * torch.log(t + 1e-10)).sum())


@register_proxy("vkdnw")
class VKDNWProxy(Proxy):
    """VKDNW: Fisher-spectrum decile entropy, ranked size-first by default (higher is better).

    ``VKDNW = -sum_{k=1..9} l_k log l_k``, l_k = q_k / sum_j q_j, q_k the k-th decile of the
    eigenvalues of ``F = (1/N) sum_n A_n^T A_n``. Here A_n = L_n J_n with J_n (C x P) the Jacobian
    of sample n's logits w.r.t. P scalar weights (entry 0 of every parameter tensor, so P is
    the number of parameter tensors), and L_n the lower Cholesky factor of the covariance
    diag(p) - p p^T of the smoothed softmax p = 0.95 softmax(logits_n) + 0.05 / C (labels are
    not used). The network is re-initialised He-normal (fan_in) and scored in eval mode with
    fresh BatchNorm statistics, on the batch's real images.

    ``variant="single"`` (default) is the score the authors rank with, VKDNW_single: the dense
    rank of the pair (P, VKDNW) (``tss_utils.py`` ``get_scores``), written as one number
    ``P + VKDNW / log(9)``; VKDNW <= log 9, so cells are ordered by P first, then by VKDNW (bar
    an exact tie at the maximum). ``variant="entropy"`` is VKDNW alone, which the authors
    describe as nearly orthogonal to model size: it is meant to order cells of equal P, and
    across sizes it can rank a pooling-only NB201 cell above the best one. Both variants of
    one (model, batch, seed) share one computation.

    The authors' code (``compute_vkdnw_score.py`` ``get_fisher``) computes ``(L J)^T (L J)`` =
    J^T L^T L J although L L^T (not L^T L) is the covariance; ``fisher="exact"`` uses
    J^T L L^T J = J^T Cov J, the textbook Fisher information, instead.

    Measured on 100 seeded NB201 cells (CIFAR-10 batch of 64, init seed 0), Spearman / Kendall
    vs ``cifar10_test``: single 0.79 / 0.60, entropy 0.23 / 0.16.

    Args:
        variant: ``"single"`` (default) or ``"entropy"`` (see above).
        fisher: ``"authors"`` (default) or ``"exact"``.
    """

    paper = VKDNW_PAPER
    uses_labels = False

    def __init__(self, *, variant: Literal["single", "entropy"] = "single",
                 fisher: Literal["authors", "exact"] = "authors") -> None:
        if variant not in VARIANTS:
            raise ZcnasError(f"vkdnw variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if fisher not in FISHERS:
            raise ZcnasError(f"vkdnw fisher must be one of {', '.join(FISHERS)}, got {fisher!r}")
        self.variant = variant
        self.fisher = fisher

    def spectrum_entropy(self, model: nn.Module, batch: Batch) -> tuple[int, float]:
        """(P, VKDNW) of ``model`` (re-initialised, then in eval mode); shared between the two
        variants of the same (model, batch, seed) so that scoring both costs one computation."""

        def run() -> tuple[int, float]:
            kaiming_normal_init(model, "fan_in")
            model.eval()
            jac, logits = entry_jacobian(model, batch.inputs)
            return jac.shape[2], decile_entropy(fisher_matrix(jac, logits, self.fisher))

        key = state_fingerprint(model, batch, "vkdnw", self.fisher, contents=True)
        return _SHARED.get_or_compute(key, run)

    def compute(self, model: nn.Module, batch: Batch) -> float:
        tensors, entropy = self.spectrum_entropy(model, batch)
        if self.variant == "single":
            return tensors + entropy / math.log(9)
        return entropy
