"""LGA, label-gradient alignment (Mok et al., "Demystifying the Neural Tangent Kernel from a
Practical Perspective: Can it be trusted for Neural Architecture Search without training?",
CVPR 2022, arXiv 2203.14577)."""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._persample import all_parameters
from zcnas.proxies._persample import loop_per_sample_matrix
from zcnas.proxies._persample import per_sample_gram
from zcnas.proxies._registry import register_proxy


def label_kernel(targets: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``Y_ij = 1`` if samples i and j share a class, else 0."""
    return (targets[:, None] == targets[None, :]).to(dtype)


def centred_alignment(kernel: torch.Tensor, labels: torch.Tensor) -> float:
    """Pearson correlation of the entries of two N x N matrices (centred kernel alignment
    ``<K - mean K, Y - mean Y>_F / (|K - mean K|_F |Y - mean Y|_F)``); NaN if one is constant."""
    k = kernel.double() - kernel.double().mean()
    y = labels.double() - labels.double().mean()
    denom = float(k.norm() * y.norm())
    if denom == 0.0:
        return float("nan")
    return float((k * y).sum()) / denom


def sgd_steps(model: nn.Module, batch: Batch, steps: int, lr: float) -> None:
    """``steps`` full-batch SGD steps on the batch (NB201 recipe: momentum 0.9, Nesterov,
    weight decay 5e-4, cross-entropy), in train mode; gradients are cleared afterwards."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch.inputs), batch.targets).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)


@register_proxy("lga")
class LGAProxy(Proxy):
    """LGA: centred alignment between the empirical NTK and the label kernel (higher is better).

    ``LGA = pearson(vec(Theta), vec(Y))`` over all N x N entries (diagonal included), with

    * ``Theta_ij = <g_i, g_j>``, ``g_i`` the gradient of the *sum of the logits* of x_i w.r.t.
      every trainable parameter (``J_i^T 1``): the class-traced empirical NTK used in NAS
      (as TE-NAS), one N x N kernel from the per-sample machinery (vmap, each sample a batch of
      one, so BatchNorm uses its own statistics, as for GradSign). The loss gradient is not
      used on purpose: ``J_i^T (p_i - e_{y_i})`` carries the labels into the kernel itself (the
      classifier bias alone gives ``[y_i = y_j]``), which would make the alignment partly
      trivial;
    * ``Y_ij = 1`` if x_i and x_j have the same label, else 0. Any affine relabelling (e.g. 0 ->
      -1/(C-1)) gives the same value, because the Pearson correlation is affine-invariant.

    NaN (a failed score) if Theta is constant, e.g. an NB201 cell with no path from input to
    output (only the classifier bias gets a gradient, the same for every sample).

    The paper's point is that LGA is meaningful after a little training: ``train_steps > 0``
    first runs that many full-batch SGD steps on the scoring batch (lr ``lr``, momentum 0.9,
    Nesterov, weight decay 5e-4, the NB201 recipe); each step costs about one plain forward +
    backward. With ``train_steps=0`` (default) it is a zero-cost proxy at initialisation.
    The paper's code is not public; this follows its description. Measured at init on 60 seeded
    random NB201 cells (CIFAR-10 batch of 64, seeds 0): Spearman 0.73 against ``cifar10_test``
    (57 cells; the 3 disconnected ones fail).

    Args:
        train_steps: SGD steps on the batch before scoring (default 0).
        lr: their learning rate (default 0.1).
        chunk_size: samples per vectorised chunk (``None``: the whole batch), as for GradAlign.
    """

    paper = "Mok et al., CVPR 2022 (arXiv 2203.14577)"
    direction = "maximize"
    version = "1"

    def __init__(self, *, train_steps: int = 0, lr: float = 0.1,
                 chunk_size: int | None = None) -> None:
        if isinstance(train_steps, bool) or not isinstance(train_steps, int) or train_steps < 0:
            raise ZcnasError(f"lga train_steps must be an int >= 0, got {train_steps!r}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ZcnasError(f"lga lr must be a positive number, got {lr!r}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ZcnasError(f"lga chunk_size must be a positive int or null, got {chunk_size!r}")
        self.train_steps = train_steps
        self.lr = lr
        self.chunk_size = chunk_size

    def _prepare(self, model: nn.Module, batch: Batch) -> None:
        if self.train_steps:
            sgd_steps(model, batch, self.train_steps, float(self.lr))

    def compute(self, model: nn.Module, batch: Batch) -> float:
        self._prepare(model, batch)
        ntk = per_sample_gram(model, batch, chunk_size=self.chunk_size,
                              names=all_parameters(model), objective="logit_sum")
        return centred_alignment(ntk, label_kernel(batch.targets))

    def reference(self, model: nn.Module, batch: Batch) -> float:
        """The same score with the plain per-sample loop and an explicit N x m matrix (slow)."""
        self._prepare(model, batch)
        grads = loop_per_sample_matrix(model, batch, names=all_parameters(model),
                                       objective="logit_sum").double()
        value = centred_alignment(grads @ grads.T, label_kernel(batch.targets))
        return value if math.isfinite(value) else float("nan")
