"""GradAlign (Li & Guo, arXiv 2411.19819, 2024): conflict among per-sample gradients at init."""

from __future__ import annotations

import math
from typing import ClassVar
from typing import Literal

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Direction
from zcnas.proxies._base import Proxy
from zcnas.proxies._persample import conv_linear_weights
from zcnas.proxies._persample import loop_per_sample_matrix
from zcnas.proxies._persample import per_sample_gram
from zcnas.proxies._registry import register_proxy


VARIANTS = ("gram", "alignment")


def normalised_gram(gram: torch.Tensor) -> torch.Tensor:
    """Cosine matrix ``G_ij = K_ij / (|g_i| |g_j|)``; a sample with a zero gradient gets a zero
    row and column (its direction is undefined, so it aligns with nothing)."""
    norms = gram.diagonal().clamp_min(0).sqrt()
    inv = torch.where(norms > 0, 1.0 / norms, torch.zeros_like(norms))
    return gram * inv[:, None] * inv[None, :]


def alignment_from_gram(gram: torch.Tensor) -> float:
    """GradAlign-I: ``mean_i cos(u_i, u_bar)`` with ``u_i = g_i/|g_i|`` and ``u_bar = mean_i u_i``,
    over the samples whose gradient is not zero (NaN if there is none).

    Since ``u_i . u_bar`` averages to ``|u_bar|^2``, this equals ``|u_bar| = sqrt(sum_ij G_ij)/n``.
    """
    live = gram.diagonal() > 0
    n = int(live.sum())
    if n == 0:
        return float("nan")
    g = normalised_gram(gram[live][:, live])
    return math.sqrt(max(float(g.sum()), 0.0)) / n


def logdet_from_gram(gram: torch.Tensor, eps: float) -> float:
    """GradAlign-II: ``log det(G + eps I)`` of the cosine matrix (``slogdet``, float64)."""
    g = normalised_gram(gram)
    eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    sign, logabs = torch.linalg.slogdet(g + eps * eye)
    if float(sign) <= 0:  # G + eps I is positive definite; only rounding could break this
        return float("nan")
    return float(logabs)


@register_proxy("gradalign")
class GradAlignProxy(Proxy):
    """GradAlign: spread of per-sample gradients at init, II (Gram log-det) or I (alignment).

    With ``g_i`` the gradient of ``CE(f(x_i), y_i)`` w.r.t. the Conv2d/Linear weights (the
    GradSign parameter set and per-sample semantics: fresh model, train mode, each sample a
    batch of one so BatchNorm uses its own statistics) and ``u_i = g_i / |g_i|``:

    * ``variant="gram"`` (GradAlign-II, default): ``log det(U U^T + eps I)`` (``slogdet``,
      float64), the log squared volume spanned by the unit gradients, in [N log eps, N log(1+eps)]:
      about 0 for mutually orthogonal gradients, very negative for (anti-)collinear or zero
      ones. Direction ``maximize``.
    * ``variant="alignment"`` (GradAlign-I): ``mean_i cos(u_i, mean_j u_j)`` in [0, 1] over the
      samples with a non-zero gradient; NaN (a failed score) when every gradient is zero, e.g. an
      NB201 cell with no path from input to output. Direction ``minimize``.

    Sign conventions, measured (not taken from the paper, whose code and tables are not
    available): 60 seeded random NB201 cells (``space.sample(60, seed=0)``, init seed 0, CIFAR-10
    batch of 64, seed 0), Spearman against NB201 ``cifar10_test``: log-det +0.76 (+0.72 without
    the 3 disconnected cells), alignment -0.51 (on the 57 cells that have gradients; the
    disconnected ones have no alignment). Both say the same thing: at
    initialisation, better NB201 networks have *more diverse* per-sample gradients (a larger
    spanned volume, a smaller mean cosine). This is the opposite of reading the paper's "less
    conflict is better" as "higher mean cosine is better", which is why ``alignment`` is minimised.
    The proxy's ``direction`` is therefore set per instance from the variant (the class attribute
    is the default variant's).

    Both come from the N x N Gram matrix ``K = [g_i . g_j]`` accumulated layer by layer in float64
    (GradAlign-I = ``sqrt(sum G)/n`` exactly). A sample with an exactly zero gradient has a zero
    unit vector (a zero row/column of G, so a factor ``eps`` in the determinant).

    Reference: Li & Guo, "GradAlign for Training-free Model Performance Inference",
    arXiv 2411.19819 (2024).

    Args:
        variant: ``"gram"`` (GradAlign-II, default) or ``"alignment"`` (GradAlign-I).
        eps: ridge added to the diagonal of the unit-diagonal cosine matrix before the log-det
            (``gram`` only), default 1e-3. It bounds each log-eigenvalue below by log(eps), so
            degenerate networks (zero or collinear gradients) get a finite, lowest score. For
            normal NB201 nets the smallest eigenvalue of G was 0.2-0.6 at N=64, so eps in
            [1e-6, 1e-2] gives the same ranking of them.
        chunk_size: samples per vectorised chunk; ``None`` (default) is the whole batch in one
            pass (memory N x weights x 4 bytes). With c chunks the Gram needs c(c+1)/2 chunk
            passes (gradients are recomputed, not stored); out-of-memory halves the chunk.
    """

    paper = "Li & Guo, arXiv 2411.19819 (2024)"
    version = "1"
    direction: ClassVar[Direction] = "maximize"  # of the default variant; instances set their own
    directions: ClassVar[dict[str, Direction]] = {"gram": "maximize", "alignment": "minimize"}

    def __init__(self, *, variant: Literal["gram", "alignment"] = "gram", eps: float = 1e-3,
                 chunk_size: int | None = None) -> None:
        if variant not in VARIANTS:
            raise ZcnasError(
                f"gradalign variant must be one of {', '.join(VARIANTS)}, got {variant!r}"
            )
        if isinstance(eps, bool) or not (isinstance(eps, (int, float)) and eps > 0):
            raise ZcnasError(f"gradalign eps must be a positive number, got {eps!r}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ZcnasError(f"gradalign chunk_size must be a positive int or null, got {chunk_size!r}")
        self.variant = variant
        self.eps = eps
        self.chunk_size = chunk_size
        self.direction = self.directions[variant]  # type: ignore[misc]

    def _score(self, gram: torch.Tensor) -> float:
        if self.variant == "alignment":
            return alignment_from_gram(gram)
        return logdet_from_gram(gram, float(self.eps))

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return self._score(per_sample_gram(model, batch, chunk_size=self.chunk_size))

    def reference(self, model: nn.Module, batch: Batch) -> float:
        """The score from the plain per-sample loop, computed directly from the definitions
        (unit vectors, their mean, cosines; ``slogdet(U U^T + eps I)``). Slow; for tests/bench."""
        grads = loop_per_sample_matrix(model, batch, names=conv_linear_weights(model)).double()
        norms = grads.norm(dim=1, keepdim=True)
        units = torch.where(norms > 0, grads / norms.clamp_min(1e-300), torch.zeros_like(grads))
        if self.variant == "alignment":
            units = units[norms[:, 0] > 0]
            if len(units) == 0:
                return float("nan")
            mean = units.mean(0)
            cosines = (units @ mean) / (units.norm(dim=1) * mean.norm())
            return float(cosines.mean())
        eye = torch.eye(len(units), dtype=units.dtype, device=units.device)
        sign, logabs = torch.linalg.slogdet(units @ units.T + float(self.eps) * eye)
        return float(logabs) if float(sign) > 0 else float("nan")
