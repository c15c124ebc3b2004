"""NATS-Bench size search space (sss): 5 layer widths in {8, 16, ..., 64}, 32,768 networks.

The network is xautodl's ``infer.shape.tiny`` model (``DynamicShapeTinyNet`` in D-X-Y/
AutoDL-Projects ``xautodl/models/shape_infers/InferTinyCellNet.py``; the cell is ``InferCell``
of ``xautodl/models/cell_infers/cells.py`` and the ops are those of
``xautodl/models/cell_operations.py``), with the fixed cell NATS-Bench stores in every sss record
(``genotype`` of the ``arch_config``, ``nats_bench/api_utils.py`` ``get_config``)::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|

Layers ``[c0, c1, c2, c3, c4]``: a 3x3 conv + BN stem with ``c0`` channels, a cell ``c0 -> c0``,
a stride-2 residual block ``c0 -> c1``, a cell ``c1 -> c2``, a residual block ``c2 -> c3``, a
cell ``c3 -> c4``, then BN + ReLU, global average pooling and a linear classifier. A cell whose
input and output widths differ widens on its edges from node 0: a 3x3 ReLU-conv-BN maps
``c_in -> c_out`` and the ``skip_connect`` becomes a 1x1 conv + BN (xautodl's stride-1
``FactorizedReduce``).
"""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any
from typing import ClassVar

import optuna
import torch
from torch import nn

from zcnas.exceptions import InvalidArchError
from zcnas.spaces._base import Arch
from zcnas.spaces._base import SearchSpace
from zcnas.spaces._nb201 import ReLUConvBN
from zcnas.spaces._nb201 import ResNetBasicBlock  # xautodl ResNetBasicblock, stride 2
from zcnas.spaces._registry import register_space


CHANNELS = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_LAYERS = 5
LAYER_NAMES = tuple(f"channels_{i}" for i in range(NUM_LAYERS))
#: the fixed cell of every NATS-Bench sss network
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# CELL as (op, source node) per node 1..3
_CELL_NODES = (
    (("nor_conv_3x3", 0),),
    (("nor_conv_3x3", 0), ("nor_conv_3x3", 1)),
    (("skip_connect", 0), ("nor_conv_3x3", 1), ("nor_conv_3x3", 2)),
)
_KEY_RE = re.compile(r"^\d+(?::\d+){4}$")


class ConvBN(nn.Sequential):
    """xautodl ``FactorizedReduce`` at stride 1: a 1x1 conv + BN, no ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


def _edge(op: str, c_in: int, c_out: int) -> nn.Module:
    if op == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, 1, 1)
    if c_in == c_out:  # skip_connect
        return nn.Identity()
    return ConvBN(c_in, c_out)


class SizeCell(nn.Module):
    """``InferCell`` of :data:`CELL`; edges leaving node 0 map ``c_in -> c_out``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for node in _CELL_NODES:
            for op, src in node:
                self.layers.append(_edge(op, c_in if src == 0 else c_out, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        layers = iter(self.layers)
        for node in _CELL_NODES:
            total: torch.Tensor | None = None
            for _, src in node:
                y = next(layers)(nodes[src])
                total = y if total is None else total + y
            assert total is not None  # every node has an input edge
            nodes.append(total)
        return nodes[-1]




class NATSSizeNetwork(nn.Module):
    """``DynamicShapeTinyNet`` for five layer widths (one cell per stage)."""

    def __init__(self, channels: tuple[int, ...], num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels[0]))
        layers: list[nn.Module] = []
        c_prev = channels[0]
        for i, c in enumerate(channels):
            layers.append(ResNetBasicBlock(c_prev, c) if i % 2 else SizeCell(c_prev, c))
            c_prev = c
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_pooling(self.lastact(self.cells(self.stem(x)))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def xautodl_flops(model: nn.Module, input_size: tuple[int, int, int]) -> float:
    """FLOPs (in M) as NATS-Bench's ``flops`` counts them (xautodl ``get_model_infos``): the
    multiply-accumulates of every ``Conv2d`` (``k*k*c_in*c_out/groups`` per output position,
    plus the bias) and ``Linear`` (``in*out`` plus the bias) for one image."""
    total = 0.0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            positions = output.shape[2] * output.shape[3]
            total += kh * kw * module.in_channels * module.out_channels / module.groups * positions
            if module.bias is not None:
                total += module.out_channels * positions
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
            if module.bias is not None:
                total += module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total / 1e6


@register_space("nats_sss")
class NATSSizeSpace(SearchSpace):
    """NATS-Bench size search space. Keys are NATS channel strings such as ``8:16:24:32:40``
    (``channels_0:...:channels_4``); :meth:`arch_at` ``(i)`` is NATS-Bench sss index ``i``
    (the last width varies fastest, as in the benchmark's ``meta_archs``)."""

    name: ClassVar[str] = "nats_sss"

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {name: optuna.distributions.CategoricalDistribution(CHANNELS) for name in LAYER_NAMES}

    def channels(self, arch: Mapping[str, Any]) -> tuple[int, ...]:
        """The five widths of a valid encoding; ``InvalidArchError`` otherwise."""
        missing = [n for n in LAYER_NAMES if n not in arch]
        extra = [n for n in arch if n not in LAYER_NAMES]
        if missing or extra:
            raise InvalidArchError(f"NATS sss arch needs exactly the keys {', '.join(LAYER_NAMES)}; "
                                   f"missing {missing}, unexpected {extra}")
        for name in LAYER_NAMES:
            value = arch[name]
            if isinstance(value, bool) or value not in CHANNELS:
                raise InvalidArchError(f"NATS sss {name} must be one of "
                                       f"{', '.join(map(str, CHANNELS))}, got {value!r}")
        return tuple(int(arch[name]) for name in LAYER_NAMES)

    def key(self, arch: Mapping[str, Any]) -> str:
        return ":".join(str(c) for c in self.channels(arch))

    def parse(self, key: str) -> Arch:
        hint = f"expected five widths from {', '.join(map(str, CHANNELS))} like 8:16:24:32:40"
        if not isinstance(key, str):
            raise InvalidArchError(f"NATS sss arch must be a string, got {type(key).__name__}; {hint}")
        if not _KEY_RE.match(key.strip()):
            raise InvalidArchError(f"malformed NATS sss arch string {key!r}; {hint}")
        arch = {name: int(c) for name, c in zip(LAYER_NAMES, key.strip().split(":"))}
        self.channels(arch)
        return arch

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        return NATSSizeNetwork(self.channels(arch), num_classes)
