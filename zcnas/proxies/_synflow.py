"""SynFlow (Tanaka et al., NeurIPS 2020) as a zero-cost proxy (zero-cost-nas ``synflow``)."""

from __future__ import annotations

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.proxies._base import Proxy
from zcnas.proxies._registry import register_proxy
from zcnas.proxies._util import remove_batchnorm
from zcnas.proxies._util import weight_layers


@register_proxy("synflow")
class SynflowProxy(Proxy):
    """Synaptic flow: sum over Conv2d/Linear weights of |theta * dR/dtheta|, R = sum(f(1)).

    As zero-cost-nas ``synflow`` (``bn=False``): every BatchNorm is replaced by the identity,
    every parameter and buffer is replaced by its absolute value, the model runs in float64 on a
    single all-ones input of the batch's image shape, and R is the sum of its outputs. Data-free
    and label-free: only the batch's shape is used.

    The raw value is returned (no log). On NB201 it spans roughly 1e32..1e61, which float64
    holds; a value that overflows to inf is recorded as a failed score by the caller. Take the
    log yourself before feeding a sampler that is sensitive to scale.
    """

    paper = "Tanaka et al., SynFlow, NeurIPS 2020; Abdelfattah et al., ICLR 2021"
    uses_data = False
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        remove_batchnorm(model)
        model.double()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        model.zero_grad(set_to_none=True)
        ones = torch.ones((1, *batch.inputs.shape[1:]), dtype=torch.float64,
                          device=batch.inputs.device)
        model(ones).sum().backward()
        total = torch.zeros((), dtype=torch.float64)
        for m in weight_layers(model):
            if m.weight.grad is not None:
                total += (m.weight.detach() * m.weight.grad).abs().sum().cpu()
        return float(total)
