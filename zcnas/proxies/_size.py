"""Model-size baselines: parameter count and FLOPs (data-free, label-free)."""

from __future__ import annotations

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.proxies._base import Proxy
from zcnas.proxies._registry import register_proxy


@register_proxy("params")
class ParamsProxy(Proxy):
    """Number of trainable parameters, in millions: sum over parameters p of numel(p) / 1e6.

    Parameters of ops that cannot reach the output still count (as in the NB201 API).
    """

    paper = "baseline (Abdelfattah et al., ICLR 2021)"
    uses_data = False
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6


@register_proxy("flops")
class FlopsProxy(Proxy):
    """Multiply-accumulates of one forward pass of one input, in millions (MFLOPs, NB201 style).

    Conv2d: C_out * H_out * W_out * (C_in / groups) * k_h * k_w; Linear: in * out.
    Counted with forward hooks on one sample of the batch's shape.
    """

    paper = "baseline (Abdelfattah et al., ICLR 2021)"
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        total = 0

        def conv_hook(m: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
            nonlocal total
            kh, kw = m.kernel_size
            total += out.shape[1] * out.shape[2] * out.shape[3] * (m.in_channels // m.groups) * kh * kw

        def linear_hook(m: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
            nonlocal total
            total += m.in_features * m.out_features

        handles = []
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                handles.append(m.register_forward_hook(conv_hook))
            elif isinstance(m, nn.Linear):
                handles.append(m.register_forward_hook(linear_hook))
        try:
            with torch.no_grad():
                model(batch.inputs[:1])
        finally:
            for h in handles:
                h.remove()
        return total / 1e6
