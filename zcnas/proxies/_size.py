"""Model-size baselines: parameter count and FLOPs (data-free, label-free)."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

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


def _prod(values: tuple[int, ...] | torch.Size) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _mha_macs(args: tuple, kwargs: dict) -> int:
    """``F.multi_head_attention_forward(query, key, value, ...)`` on ``(L, N, E)`` tensors (or
    unbatched ``(L, E)``): the q/k/v projections, ``q k^T``, the weighted sum of ``v`` and the
    output projection."""
    query, key, value = (kwargs.get(k, a) for k, a in zip(("query", "key", "value"), args[:3]))
    length, embed = query.shape[0], query.shape[-1]
    source, batch = key.shape[0], (query.shape[1] if query.dim() == 3 else 1)
    per_item = (length * embed * embed + source * key.shape[-1] * embed
                + source * value.shape[-1] * embed + 2 * length * source * embed
                + length * embed * embed)
    return batch * per_item


def _conv_macs(out: torch.Tensor, weight: torch.Tensor) -> int:
    return out.numel() * _prod(weight.shape[1:])


def _conv_transpose_macs(inp: torch.Tensor, weight: torch.Tensor) -> int:
    return inp.numel() * _prod(weight.shape[1:])


_CONVS = {F.conv1d, F.conv2d, F.conv3d}
_CONV_TRANSPOSES = {F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d}
_MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.bmm,
            torch.Tensor.mm, torch.Tensor.bmm}
_ADDMMS = {torch.addmm, torch.baddbmm, torch.Tensor.addmm, torch.Tensor.baddbmm}


class MacCounter(TorchFunctionMode):
    """Count multiply-accumulates of the matrix products and convolutions a forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func is F.multi_head_attention_forward:  # it runs its own products inside
            self.macs += _mha_macs(args, kwargs)
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if func in _CONVS:
            self.macs += _conv_macs(out, kwargs.get("weight", args[1] if len(args) > 1 else None))
        elif func in _CONV_TRANSPOSES:
            self.macs += _conv_transpose_macs(args[0], kwargs.get("weight", args[1]))
        elif func is F.linear:
            weight = kwargs.get("weight", args[1] if len(args) > 1 else None)
            self.macs += args[0].numel() * weight.shape[0]
        elif func in _MATMULS:
            self.macs += out.numel() * args[0].shape[-1]
        elif func in _ADDMMS:
            self.macs += out.numel() * args[1].shape[-1]
        elif func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            self.macs += _prod(q.shape[:-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        return out


@register_proxy("flops")
class FlopsProxy(Proxy):
    """Multiply-accumulates of one forward pass of one input, in millions (MFLOPs, NB201 style).

    Counted where a forward calls them (a ``TorchFunctionMode``, so functional calls count as
    well as modules): convolutions (``F.conv1d/2d/3d``: C_out * out positions * C_in/groups *
    kernel; transposed alike), ``F.linear`` (in * out per position, i.e. per token for a
    ``(N, T, C)`` input), matrix products (``matmul``/``@``, ``mm``, ``bmm``, ``addmm``,
    ``baddbmm``), ``F.scaled_dot_product_attention`` (both products) and
    ``nn.MultiheadAttention`` (projections and both products). Not counted: element-wise ops,
    normalisation, pooling, ``torch.einsum``. On NAS-Bench-201 this is the Conv2d + Linear count
    of the NB201 API (153.27 for the best CIFAR-10 cell); on the test models it equals
    ``torch.utils.flop_counter``'s count / 2. Counted in eval mode (the inference network:
    a train-only auxiliary head is not counted), the model's mode restored afterwards.
    """

    paper = "baseline (Abdelfattah et al., ICLR 2021)"
    # it reads only the image shape, but stays keyed on the batch (uses_data True) so that the
    # flops scores cached by zcnas 0.1 remain cache hits; az_complexity is the data-free twin
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        counter = MacCounter()
        was_training = model.training
        model.eval()  # one image: BatchNorm must not need batch statistics (1x1 maps)
        try:
            with counter, torch.no_grad():
                model(batch.inputs[:1])
        finally:
            model.train(was_training)
        return counter.macs / 1e6
