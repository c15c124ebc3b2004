"""SynFlow (Tanaka et al., NeurIPS 2020) as a zero-cost proxy (zero-cost-nas ``synflow``)."""

from __future__ import annotations

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import ScoreError
from zcnas.proxies._base import Proxy
from zcnas.proxies._persample import dropout_disabled
from zcnas.proxies._registry import register_proxy
from zcnas.proxies._util import BOUNDED_ACTIVATIONS
from zcnas.proxies._util import NORMALIZATION
from zcnas.proxies._util import remove_batchnorm
from zcnas.proxies._util import weight_params


@register_proxy("synflow")
class SynflowProxy(Proxy):
    """Synaptic flow: sum over Conv/Linear weights of |theta * dR/dtheta|, R = sum(f(1)).

    As zero-cost-nas ``synflow`` (``bn=False``): every BatchNorm is replaced by the identity,
    every parameter and buffer is replaced by its absolute value, the model runs in float64 on a
    single all-ones input of the batch's image shape, and R is the sum of its outputs. Data-free
    and label-free: only the batch's shape is used.

    Other models: every normalisation layer (LayerNorm, GroupNorm, InstanceNorm, RMSNorm, ...)
    is replaced by the identity as BatchNorm is (as Deeplite's ``deeplite_torch_zoo``
    ``zero_cost_proxies/synflow.py`` does), since subtracting a mean breaks the all-positive
    network the score is defined on; dropout is disabled (a random mask would cut random
    paths); the weights are :func:`~zcnas.proxies._util.weight_params`. A model with an
    activation bounded above (ReLU6, Hardtanh, Sigmoid, Tanh, Hardsigmoid) is refused
    (:meth:`check_model`): the all-positive network drives it into saturation, where its
    derivative is 0 and every layer before it scores 0 (measured on MobileNetV2: all but the
    classifier).

    The raw value is returned (no log). On NB201 it spans roughly 1e32..1e61, which float64
    holds; a value that overflows to inf is recorded as a failed score by the caller. Take the
    log yourself before feeding a sampler that is sensitive to scale.
    """

    paper = "Tanaka et al., SynFlow, NeurIPS 2020; Abdelfattah et al., ICLR 2021"
    uses_data = False
    uses_labels = False

    def check_model(self, model: nn.Module) -> None:
        for name, mod in model.named_modules():
            if isinstance(mod, BOUNDED_ACTIVATIONS):
                raise ScoreError(
                    f"{self.name} needs activations unbounded above: its all-ones input through "
                    f"|weights| saturates {type(mod).__name__} '{name}', cutting the flow to 0; "
                    f"use a data-dependent proxy (e.g. snip) for this model"
                )

    def compute(self, model: nn.Module, batch: Batch) -> float:
        self.check_model(model)
        remove_batchnorm(model, NORMALIZATION)
        model.double()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        model.zero_grad(set_to_none=True)
        ones = torch.ones((1, *batch.inputs.shape[1:]), dtype=torch.float64,
                          device=batch.inputs.device)
        with dropout_disabled(model):
            model(ones).sum().backward()
        total = torch.zeros((), dtype=torch.float64)
        for weight in weight_params(model):
            if weight.grad is not None:
                total += self._saliency(weight.detach(), weight.grad).sum().cpu()
        return float(total)

    @staticmethod
    def _saliency(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Per-weight score: |theta * dR/dtheta|."""
        return (weight * grad).abs()


@register_proxy("logsynflow")
class LogSynflowProxy(SynflowProxy):
    """LogSynflow (FreeREA): sum over Conv/Linear weights of |theta| * log(1 + |dR/dtheta|).

    SynFlow's network and input (BatchNorm removed, |parameters|, float64, one all-ones input),
    with each weight's gradient compressed by log(1 + g) before the product, as FreeREA's
    ``compute_synflow_per_weight(remap='log')`` does (Cavagnero et al., WACV 2023; repository
    ``NiccoloCavagnero/FreeREA``, ``metrics/synflow.py``): a few huge gradients no longer dominate
    the sum, so the score does not span 30 orders of magnitude as SynFlow's does.
    """

    paper = "Cavagnero et al., FreeREA, WACV 2023 (LogSynflow)"

    @staticmethod
    def _saliency(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return (weight * torch.log1p(grad.abs())).abs()
