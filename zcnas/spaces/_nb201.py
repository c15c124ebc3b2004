"""NAS-Bench-201 / NATS-Bench topology space: 6 edges x 5 ops = 15,625 cells, C=16, N=5.

The network follows the NAS-Bench-201 paper and xautodl's ``infer.tiny`` model: a 3x3 conv stem
(C=16) + BN, three stages of N=5 identical cells separated by residual reduction blocks
(16 -> 32 -> 64 channels), BN + ReLU, global average pooling, and a linear classifier.
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
from zcnas.spaces._registry import register_space


OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edges j -> i in the order of the NB201 string |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
EDGE_NAMES = tuple(f"edge_{j}_{i}" for j, i in EDGES)
_NNI_OPS = {"conv_1x1": "nor_conv_1x1", "conv_3x3": "nor_conv_3x3"}
_NODE_RE = re.compile(r"^\|(?:[a-z0-9_]+~\d\|)+$")


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidArchError(f"unknown NB201 op {name!r}; ops are {', '.join(OPS)}")


class NB201Cell(nn.Module):
    """Four nodes; node i is the sum over j < i of op_{j->i}(node j)."""

    def __init__(self, arch: Mapping[str, str], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({name: make_op(arch[name], channels) for name in EDGE_NAMES})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in (1, 2, 3):
            nodes.append(sum(self.edges[f"edge_{j}_{i}"](nodes[j]) for j in range(i)))
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """The stride-2 residual block between stages (as in NAS-Bench-201)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(self, arch: Mapping[str, str], channels: int = 16, cells_per_stage: int = 5,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, c * 2))
                c *= 2
            layers.extend(NB201Cell(arch, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_pooling(self.lastact(self.cells(self.stem(x)))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 cell space. Keys are canonical NB201 arch strings, e.g.
    ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|``.
    """

    name: ClassVar[str] = "nb201"

    def __init__(self, *, channels: int = 16, cells_per_stage: int = 5) -> None:
        self.channels = channels
        self.cells_per_stage = cells_per_stage

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {name: optuna.distributions.CategoricalDistribution(OPS) for name in EDGE_NAMES}

    def key(self, arch: Mapping[str, Any]) -> str:
        missing = [n for n in EDGE_NAMES if n not in arch]
        extra = [n for n in arch if n not in EDGE_NAMES]
        if missing or extra:
            raise InvalidArchError(
                f"NB201 arch needs exactly the keys {', '.join(EDGE_NAMES)}; "
                f"missing {missing}, unexpected {extra}"
            )
        for name in EDGE_NAMES:
            if arch[name] not in OPS:
                raise InvalidArchError(
                    f"unknown NB201 op {arch[name]!r} on {name}; ops are {', '.join(OPS)}"
                )
        nodes = []
        for i in (1, 2, 3):
            nodes.append("|" + "|".join(f"{arch[f'edge_{j}_{i}']}~{j}" for j in range(i)) + "|")
        return "+".join(nodes)

    def parse(self, key: str) -> Arch:
        hint = (
            "expected an NB201 string like "
            "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
        )
        if not isinstance(key, str):
            raise InvalidArchError(f"arch must be a string, got {type(key).__name__}; {hint}")
        parts = key.strip().split("+")
        if len(parts) != 3 or not all(_NODE_RE.match(p) for p in parts):
            raise InvalidArchError(f"malformed NB201 arch string {key!r}; {hint}")
        arch: Arch = {}
        for i, part in enumerate(parts, start=1):
            tokens = part.strip("|").split("|")
            if len(tokens) != i:
                raise InvalidArchError(
                    f"malformed NB201 arch string {key!r}: node {i} needs {i} inputs, "
                    f"got {len(tokens)}; {hint}"
                )
            for j, token in enumerate(tokens):
                op, _, src = token.partition("~")
                if src != str(j):
                    raise InvalidArchError(
                        f"malformed NB201 arch string {key!r}: node {i} input {j} reads ~{src}; {hint}"
                    )
                if op not in OPS:
                    raise InvalidArchError(
                        f"unknown NB201 op {op!r} in {key!r}; ops are {', '.join(OPS)}"
                    )
                arch[f"edge_{j}_{i}"] = op
        return {name: arch[name] for name in EDGE_NAMES}

    def translate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """NNI's own NAS-Bench-201 space (``nni.nas.hub.pytorch.NasBench201`` and NNI's NB201
        benchmark) labels edge j->i as ``"j_i"`` and spells the convolutions without ``nor_``."""
        if set(params) == set(EDGE_NAMES):
            return dict(params)
        aliased = {f"edge_{k}": _NNI_OPS.get(v, v) for k, v in params.items()}
        return aliased if set(aliased) == set(EDGE_NAMES) else dict(params)

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        self.key(arch)
        return NB201Network(arch, self.channels, self.cells_per_stage, num_classes)
