"""GradSign (Zhang & Jia, ICLR 2022): sign agreement of per-sample gradients at initialisation."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._persample import Grads
from zcnas.proxies._persample import conv_linear_weights
from zcnas.proxies._persample import loop_per_sample_grads
from zcnas.proxies._persample import stream_per_sample_grads
from zcnas.proxies._registry import register_proxy


VARIANTS = ("sum", "mean")


def sign_counts(model: nn.Module, batch: Batch, *, chunk_size: int | None = 32,
                loop: bool = False) -> dict[str, torch.Tensor]:
    """Per weight entry k, the int32 counter ``sum_i sign(dL_i/dtheta_k)`` over the batch.

    Keys are the Conv2d/Linear weight names. ``loop=True`` uses the plain batch-1 loop (the
    official implementation; slow reference) instead of ``vmap``. Only one chunk of per-sample
    gradients is alive at a time; the counters take 4 bytes per weight entry.
    """
    names = conv_linear_weights(model)
    params = dict(model.named_parameters())
    counts = {n: torch.zeros_like(params[n], dtype=torch.int32) for n in names}

    def reduce(grads: Grads, _start: int) -> None:
        for name, g in grads.items():
            # sign sums of at most N entries of +-1/0 are exact in float32
            counts[name] += torch.sign(g).sum(0).to(torch.int32)

    if loop:
        loop_per_sample_grads(model, batch, reduce, names=names)
    else:
        stream_per_sample_grads(model, batch, reduce, chunk_size=chunk_size, names=names)
    return counts


def gradsign_from_counts(counts: dict[str, torch.Tensor], variant: str = "sum") -> float:
    """``sum_k |counts_k|`` (``"sum"``) or that divided by the number of entries (``"mean"``)."""
    total = sum(int(c.abs().sum(dtype=torch.int64)) for c in counts.values())
    if variant == "mean":
        return total / max(1, sum(c.numel() for c in counts.values()))
    return float(total)


@register_proxy("gradsign")
class GradSignProxy(Proxy):
    """GradSign: sum_k |sum_i sign(dL_i/dtheta_k)| over Conv/Linear weights (higher is better).

    Formula (Zhang & Jia, "GradSign: Model Performance Inference with Theoretical Insights",
    ICLR 2022, arXiv 2110.08616, Algorithm 1)::

        GradSign = sum_k | sum_{i=1..N} sign( d CE(f_theta(x_i), y_i) / d theta_k  at theta_0 ) |

    Semantics (as the official code): theta are the ``weight`` tensors of every ``nn.Conv2d`` and
    ``nn.Linear`` (no biases, no BatchNorm); the model is freshly initialised and in train mode,
    and each sample is a batch of one, so BatchNorm uses that sample's own statistics; the loss
    is cross-entropy; a weight without a gradient counts as 0, and sign(0) = 0. Per-sample
    gradients come from ``torch.func.vmap`` in chunks of ``chunk_size`` samples (halved on
    out-of-memory) and are reduced into an int32 counter per weight, never an N x m array.
    Float rounding differs from the batch-1 loop, so signs of gradients within rounding of 0 may
    differ (tests bound this).

    Measured (60 seeded random NB201 cells, CIFAR-10 batch of 64, Spearman vs ``cifar10_test``):
    ``sum`` 0.81, ``mean`` 0.06. Per weight, |sum_i sign| sits near the coin-flip value
    sqrt(2N/pi) (6.4 at N=64) for almost all conv weights, so ``sum`` behaves largely like a count
    of weights that get a gradient, and ``mean`` mostly measures the fraction of dead weights
    (e.g. behind ``none`` edges). The assisted-NAS scripts computed ``mean`` on networks built
    from a supernet, where the denominator is the same for every cell, which makes it a scaled
    ``sum``; on stand-alone networks (here) prefer ``sum``.

    Args:
        variant: ``"sum"`` (the paper's formula, default; grows with the parameter count) or
            ``"mean"`` (divided by the number of weight entries, as in the GradSign-assisted NAS
            scripts; see above).
        chunk_size: samples per vectorised chunk (memory ~ chunk_size x weights x 4 bytes);
            ``None`` is the whole batch at once.
    """

    paper = "Zhang & Jia, ICLR 2022 (arXiv 2110.08616)"
    direction = "maximize"
    version = "1"

    def __init__(self, *, variant: Literal["sum", "mean"] = "sum",
                 chunk_size: int | None = 32) -> None:
        if variant not in VARIANTS:
            raise ZcnasError(f"gradsign variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ZcnasError(f"gradsign chunk_size must be a positive int or null, got {chunk_size!r}")
        self.variant = variant
        self.chunk_size = chunk_size

    def compute(self, model: nn.Module, batch: Batch) -> float:
        counts = sign_counts(model, batch, chunk_size=self.chunk_size)
        return gradsign_from_counts(counts, self.variant)

    def reference(self, model: nn.Module, batch: Batch) -> float:
        """The same score from the plain per-sample loop (slow; for tests and ``zcnas bench``)."""
        return gradsign_from_counts(sign_counts(model, batch, loop=True), self.variant)
