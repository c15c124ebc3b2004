"""KNAS (Xu et al., "KNAS: Green Neural Architecture Search", ICML 2021): the mean of the
gradient kernel ("MGM", mean of the Gram matrix of gradients) at initialisation.

Paper: MGM = (1/n^2) sum_{i,j} <g_i, g_j> over the gradients g of n samples. The authors' code
(``Jingjing-NLP/KNAS`` ``exps/NAS-Bench-201/functions.py``, ``procedure``) takes mini-batch
gradients of 50 training batches at the default initialisation (no optimiser step), keeps only
the first 100 entries of the first 11 parameter tensors (in ``named_parameters()`` order) that
have a gradient and at least 50 entries, and divides by 50^2. Its active lines pair batch k with
batch 25 + k after centring each half (a cross-covariance whose expectation is 0 at fixed
weights); the Gram-mean form (``means = sum_k g_k; |means . means| / 2500``) is the one left
commented out, and is the paper's definition implemented here.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._persample import Grads
from zcnas.proxies._persample import conv_linear_weights
from zcnas.proxies._persample import stream_per_sample_grads
from zcnas.proxies._registry import register_proxy


SUBSETS = ("authors", "conv_linear")
AUTHORS_TENSORS = 11
AUTHORS_ENTRIES = 100
AUTHORS_MIN_ENTRIES = 50


def authors_subset(model: nn.Module) -> list[str]:
    """The first 11 parameter tensors with at least 50 entries (KNAS keeps entries 0..99)."""
    out = []
    for name, p in model.named_parameters():
        if p.requires_grad and p.numel() >= AUTHORS_MIN_ENTRIES:
            out.append(name)
        if len(out) == AUTHORS_TENSORS:
            break
    return out


@register_proxy("knas")
class KNASProxy(Proxy):
    """KNAS mean gradient kernel MGM = (1/N^2) sum_{i,j} <g_i, g_j> = ||(1/N) sum_i g_i||^2.

    g_i is the gradient of the cross-entropy of sample i alone (each sample is a batch of one,
    so BatchNorm uses its own statistics, as for GradSign), restricted to ``subset``:

    * ``"authors"`` (default): entries 0..99 of the first 11 parameter tensors with >= 50
      entries (NB201: the stem conv and the first ten conv weights);
    * ``"conv_linear"``: every Conv2d/Linear weight.

    Higher is better. Default initialisation, train mode. Per-sample gradients come from
    ``torch.func.vmap`` in chunks; only their running sum is kept.

    Measured on 100 seeded NB201 cells (CIFAR-10 batch of 64, seed 0; ``"authors"`` subset),
    Spearman / Kendall vs ``cifar10_test``: 0.64 / 0.46.

    Args:
        subset: ``"authors"`` or ``"conv_linear"``.
        chunk_size: samples per vectorised chunk (``None``: the whole batch).
    """

    paper = "Xu et al., KNAS: Green Neural Architecture Search, ICML 2021"

    def __init__(self, *, subset: Literal["authors", "conv_linear"] = "authors",
                 chunk_size: int | None = 32) -> None:
        if subset not in SUBSETS:
            raise ZcnasError(f"knas subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ZcnasError(f"knas chunk_size must be a positive int or null, got {chunk_size!r}")
        self.subset = subset
        self.chunk_size = chunk_size

    def selected(self, model: nn.Module) -> tuple[list[str], int | None]:
        """(parameter names, entries kept per tensor or None for all)."""
        if self.subset == "authors":
            return authors_subset(model), AUTHORS_ENTRIES
        return conv_linear_weights(model), None

    def compute(self, model: nn.Module, batch: Batch) -> float:
        names, keep = self.selected(model)
        total: dict[str, torch.Tensor] = {}

        def reduce(grads: Grads, _start: int) -> None:
            for name, g in grads.items():
                flat = g.reshape(g.shape[0], -1)
                if keep is not None:
                    flat = flat[:, :keep]
                s = flat.double().sum(0)
                total[name] = total[name] + s if name in total else s

        model.train()
        stream_per_sample_grads(model, batch, reduce, chunk_size=self.chunk_size, names=names)
        n = len(batch)
        return float(sum(float((v / n).pow(2).sum()) for v in total.values()))
