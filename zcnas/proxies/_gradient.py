"""Gradient-based pruning-at-init baselines of zero-cost-nas (Abdelfattah et al., ICLR 2021):
grad_norm, snip, grasp and fisher.

Common protocol (SamsungLabs/zero-cost-nas ``foresight/pruners``): one minibatch, the model in
train mode with BatchNorm using batch statistics (``bn=True``), mean cross-entropy loss, and
per-weight scores summed over the ``weight`` of every Conv2d and Linear layer. All four are
"higher is better" (grasp is negated, as in zero-cost-nas).

On other models the weights are :func:`~zcnas.proxies._util.weight_params` (every convolution
and Linear weight, plus ``nn.MultiheadAttention``'s input projections); on NAS-Bench-201 that is
the Conv2d/Linear set. Dropout modules stay active (train mode, as in zero-cost-nas).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn.attention import SDPBackend
from torch.nn.attention import sdpa_kernel

from zcnas.data import Batch
from zcnas.proxies._base import Proxy
from zcnas.proxies._registry import register_proxy
from zcnas.proxies._util import cross_entropy
from zcnas.proxies._util import weight_layers
from zcnas.proxies._util import weight_params


ZC_PAPER = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


def _weight_grads(model: nn.Module, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """(weight, dL/dweight) for every scored weight after one forward/backward of ``batch``."""
    model.zero_grad(set_to_none=True)
    loss = cross_entropy(model(batch.inputs), batch.targets)
    loss.backward()
    return [(w, w.grad) for w in weight_params(model)]


@register_proxy("grad_norm")
class GradNormProxy(Proxy):
    """Sum over Conv2d/Linear layers l of ||dL/dW_l||_2 (Frobenius norm of the weight gradient).

    L is the mean cross-entropy of the batch; BN in train mode. Layers with no gradient (cut off
    from the output) add 0.
    """

    paper = ZC_PAPER

    def compute(self, model: nn.Module, batch: Batch) -> float:
        total = 0.0
        for _, grad in _weight_grads(model, batch):
            if grad is not None:
                total += float(grad.norm())
        return total


@register_proxy("snip")
class SnipProxy(Proxy):
    """SNIP connection sensitivity: sum over Conv2d/Linear weights of |theta * dL/dtheta|.

    zero-cost-nas takes the gradient w.r.t. an all-ones multiplicative mask on each weight, which
    equals theta * dL/dtheta; L is the mean cross-entropy, BN in train mode.
    """

    paper = "Lee et al., SNIP, ICLR 2019; " + ZC_PAPER

    def compute(self, model: nn.Module, batch: Batch) -> float:
        total = 0.0
        for weight, grad in _weight_grads(model, batch):
            if grad is not None:
                total += float((weight.detach() * grad).abs().sum())
        return total


@register_proxy("grasp")
class GraspProxy(Proxy):
    """GraSP, negated as in zero-cost-nas: sum over Conv2d/Linear weights of -theta * (H g).

    g = dL/dtheta (detached) and H g the Hessian-gradient product, obtained by a second
    forward and double backprop of z = sum(g * dL/dtheta). Raw GraSP correlates negatively with
    accuracy; the sign flip makes higher better. L is the mean cross-entropy, BN in train mode.
    ``F.scaled_dot_product_attention`` runs on its math backend here: the fused CPU kernel has no
    second derivative.
    """

    paper = "Wang et al., GraSP, ICLR 2020; " + ZC_PAPER

    def compute(self, model: nn.Module, batch: Batch) -> float:
        with sdpa_kernel([SDPBackend.MATH]):
            return self._compute(model, batch)

    def _compute(self, model: nn.Module, batch: Batch) -> float:
        weights = weight_params(model)
        model.zero_grad(set_to_none=True)
        loss = cross_entropy(model(batch.inputs), batch.targets)
        grad_w = torch.autograd.grad(loss, weights, allow_unused=True)

        loss = cross_entropy(model(batch.inputs), batch.targets)
        grad_f = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        z = sum(
            (gw.detach() * gf).sum() for gw, gf in zip(grad_w, grad_f)
            if gw is not None and gf is not None
        )
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            return 0.0  # no weight reaches the loss
        hg = torch.autograd.grad(z, weights, allow_unused=True)
        total = 0.0
        for w, h in zip(weights, hg):
            if h is not None:
                total += float((-w.detach() * h).sum())
        return total


@register_proxy("fisher")
class FisherProxy(Proxy):
    """Fisher pruning saliency (Theis et al. 2018), summed as zero-cost-nas sums it.

    For each Conv2d/Linear layer l with output activation a (N, C, ...) and gradient dL/da, the
    channel saliency is F_lk = 0.5 * mean_n (sum_spatial a_nk * dL/da_nk)^2. zero-cost-nas
    broadcasts F_lk to every weight of output channel k (``reshape_elements``) before summing,
    so the score is sum_l fan_in_l * sum_k F_lk, with fan_in_l = C_in * k_h * k_w (Conv2d) or
    in_features (Linear). L is the mean cross-entropy, BN in train mode.

    The channel of a convolution output is dim 1; that of a Linear output is the last dim, and
    a Linear applied to tokens ``(N, T, C)`` sums over T like a convolution over positions
    (zero-cost-nas only sees 2-D Linear inputs, where both agree). Only layers called as modules
    are hooked: ``nn.MultiheadAttention`` runs its projections functionally, so they add nothing.
    """

    paper = "Theis et al., Faster gaze prediction with dense networks and Fisher pruning, 2018; " \
        + ZC_PAPER

    def compute(self, model: nn.Module, batch: Batch) -> float:
        per_layer: list[torch.Tensor] = []

        def forward_hook(m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
            if not out.requires_grad:
                return
            act = out.detach()
            fan_in = cast(torch.Tensor, m.weight)[0].numel()  # a conv/Linear weight

            def grad_hook(grad: torch.Tensor) -> None:
                g_nk = act * grad.detach()
                if isinstance(m, nn.Linear) and g_nk.dim() > 2:
                    g_nk = g_nk.movedim(-1, 1)  # the channel dim of a Linear is the last
                if g_nk.dim() > 2:
                    g_nk = g_nk.sum(dim=tuple(range(2, g_nk.dim())))
                per_layer.append(g_nk.pow(2).mean(0).mul(0.5).sum() * fan_in)

            out.register_hook(grad_hook)

        handles = [m.register_forward_hook(forward_hook) for m in weight_layers(model)]
        try:
            model.zero_grad(set_to_none=True)
            loss = cross_entropy(model(batch.inputs), batch.targets)
            loss.backward()
        finally:
            for h in handles:
                h.remove()
        return float(sum(float(v) for v in per_layer))
