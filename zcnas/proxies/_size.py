"""Model-size baselines: parameter count and FLOPs (data-free, label-free)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend
from torch.nn.attention import sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

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

    Every matrix product and convolution is counted, as ``torch.utils.flop_counter`` counts them
    (its FLOPs are 2 x MACs): Conv2d is C_out * H_out * W_out * (C_in / groups) * k_h * k_w,
    Linear in * out per position (per token for a ``(N, T, C)`` input), attention both of its
    matmuls (``scaled_dot_product_attention`` runs on its math backend so that they are seen).
    Element-wise ops, normalisation and pooling are not counted. On NAS-Bench-201 this equals
    the Conv2d + Linear count of the NB201 API (153.27 for the best CIFAR-10 cell).
    """

    paper = "baseline (Abdelfattah et al., ICLR 2021)"
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        counter = FlopCounterMode(display=False)
        with counter, sdpa_kernel([SDPBackend.MATH]), torch.no_grad():
            model(batch.inputs[:1])
        return counter.get_total_flops() / 2 / 1e6
