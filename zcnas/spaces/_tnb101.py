"""TransNAS-Bench-101 micro (cell) and macro (skeleton) spaces and their encoder network.

The network is TNB101's backbone ``MacroNet(structure="backbone")`` (yawen-d/TransNASBench
``lib/models/net_infer/net_macro.py``, ``cell_micro.py``, ``net_ops/cell_ops.py``; NASLib copies it
in ``naslib/search_spaces/transbench101/tnb101/``), re-written here, followed by the
classification decoder of TNB101's ``FFDecoder`` (global average pooling + linear layer of
``num_classes``):

* stem: conv3x3/2 (C/2) + BN, then ReLU-conv3x3/2-BN to C channels (resolution / 4);
* one module per skeleton code, each 2 blocks (micro: the searched cell, macro: a ResNet basic
  block); code 1 = normal, 2 = channels x2, 3 = resolution / 2, 4 = both; only the first block
  of a module changes channels or resolution;
* Kaiming-normal (fan_out, relu) conv weights, BN weight 1 / bias 0, as ``MacroNet._kaiming_init``.

Two details of the official code are kept because they change the network's outputs: in a
macro basic block the shortcut's ``BatchNorm2d(planes, affine, track_running_stats)`` passes
those flags positionally, so it runs with ``eps=1.0`` and ``momentum=1.0``; and a micro ``none``
edge that changes the channel count returns zeros of the target shape.

Resolution: TNB101 trains on 256x256 Taskonomy images (``configs/train_from_scratch/*/config.py``
``input_dim``). The network is resolution-agnostic; zcnas scores it on the 32x32 CIFAR-10 stand-in
(``input_size``) because a 256x256 forward costs ~64x more on CPU, at which size the last
module runs at 1x1. Only the classification tasks have a classification decoder in TNB101; for
the others zcnas scores this encoder with the same linear head (see the tnb101 benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping
import math
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
from zcnas.spaces._registry import register_space


MICRO_OPS = ("none", "skip_connect", "conv_1x1", "conv_3x3")  # TNB101 codes 0, 1, 2, 3
MICRO_SKELETON = "41414"
# edges j -> i in the order of the micro string a_bc_def: node1<-0; node2<-0,1; node3<-0,1,2
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
EDGE_NAMES = tuple(f"edge_{j}_{i}" for j, i in EDGES)
BASE_CHANNELS = 64  # the "64-" prefix of every TNB101 arch string
MODULE_NAMES = tuple(f"module_{i}" for i in range(1, 7))
MODULE_CODES = (1, 2, 3, 4)  # normal, channel x2, resolution / 2, both
_MICRO_RE = re.compile(r"^64-41414-([0-3])_([0-3]{2})_([0-3]{3})$")
_MACRO_RE = re.compile(r"^64-([1-4]{4,6})-basic$")


def _kaiming_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)




class Zero(nn.Module):
    """TNB101's ``none`` edge: zeros, of the target channel count when it changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x[:, :, ::self.stride, ::self.stride].mul(0.0)
        n, _, h, w = x.shape
        return x.new_zeros((n, self.c_out, (h + 1) // self.stride, (w + 1) // self.stride))


class FactorizedReduce(nn.Module):
    """TNB101's skip edge across a stride / channel change: two 1x1 convs, the second on the
    input shifted by one pixel (zero-padded at the bottom / right)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.convs = nn.ModuleList([
            nn.Conv2d(c_in, c_out // 2, 1, stride=stride, padding=0, bias=False),
            nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=stride, padding=0, bias=False),
        ])
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1))


def micro_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 and c_in == c_out else FactorizedReduce(c_in, c_out, stride)
    if name == "conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0)
    if name == "conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1)
    raise InvalidArchError(f"unknown TNB101 micro op {name!r}; ops are {', '.join(MICRO_OPS)}")


class MicroCell(nn.Module):
    """Four nodes; node i sums op_{j->i}(node j) over j < i; edges out of node 0 carry the
    block's stride and channel change. The output is node 3."""

    def __init__(self, ops: Mapping[str, str], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({
            f"edge_{j}_{i}": micro_op(ops[f"edge_{j}_{i}"], c_in if j == 0 else c_out, c_out,
                                      stride if j == 0 else 1)
            for j, i in EDGES
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in (1, 2, 3):
            nodes.append(sum(self.edges[f"edge_{j}_{i}"](nodes[j]) for j in range(i)))
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    """TNB101's macro block: two ReLU-conv3x3-BN, 1x1-conv + BN shortcut on a shape change
    (that BN has eps=1.0 and momentum=1.0, as in the official code)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, padding=0, bias=False),
                nn.BatchNorm2d(c_out, eps=1.0, momentum=1.0),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


class TNB101Network(nn.Module):
    """TNB101 encoder (``MacroNet`` backbone) + global average pooling + linear head.

    Args:
        skeleton: the module codes, e.g. ``"41414"``.
        cell: the micro cell's edge ops (``EDGE_NAMES`` -> op), or None for basic blocks.
        channels: base channels (64 in TNB101).
    """

    def __init__(self, skeleton: str, cell: Mapping[str, str] | None, channels: int = 64,
                 num_classes: int = 10) -> None:
        super().__init__()
        half = channels // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            ReLUConvBN(half, channels, 3, 2, 1),
        )
        modules: list[nn.Module] = []
        c = channels
        for code in (int(ch) for ch in skeleton):
            c_out = c * 2 if code % 2 == 0 else c
            stride = 2 if code > 2 else 1
            if cell is None:
                blocks: list[nn.Module] = [ResNetBasicBlock(c, c_out, stride),
                                           ResNetBasicBlock(c_out, c_out, 1)]
            else:
                blocks = [MicroCell(cell, c, c_out, stride), MicroCell(cell, c_out, c_out, 1)]
            modules.append(nn.Sequential(*blocks))
            c = c_out
        self.layers = nn.Sequential(*modules)
        self.out_channels = c
        _kaiming_init(self)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_pooling(self.layers(self.stem(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def _check_keys(arch: Mapping[str, Any], names: tuple[str, ...], space: str) -> None:
    missing = [n for n in names if n not in arch]
    extra = [n for n in arch if n not in names]
    if missing or extra:
        raise InvalidArchError(f"{space} arch needs exactly the keys {', '.join(names)}; "
                               f"missing {missing}, unexpected {extra}")


@register_space("tnb101_micro")
class TNB101MicroSpace(SearchSpace):
    """TransNAS-Bench-101 micro space: 4,096 cells on the 41414 skeleton.

    6 edges x 4 ops on the fixed skeleton ``41414``. Keys are the official strings
    ``64-41414-a_bc_def`` (codes 0 none, 1 skip, 2 conv1x1, 3 conv3x3; a: node1<-0,
    bc: node2<-0,1, def: node3<-0,1,2).

    Args:
        channels: base channels (64 = the benchmark's network; smaller only for quick tests).
    """

    name: ClassVar[str] = "tnb101_micro"

    def __init__(self, *, channels: int = BASE_CHANNELS) -> None:
        if channels < 2 or channels % 2:
            raise InvalidArchError(f"TNB101 needs an even base channel count >= 2, got {channels}")
        self.channels = channels

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {n: optuna.distributions.CategoricalDistribution(MICRO_OPS) for n in EDGE_NAMES}

    def key(self, arch: Mapping[str, Any]) -> str:
        _check_keys(arch, EDGE_NAMES, "TNB101 micro")
        codes = []
        for n in EDGE_NAMES:
            if arch[n] not in MICRO_OPS:
                raise InvalidArchError(f"unknown TNB101 micro op {arch[n]!r} on {n}; ops are "
                                       f"{', '.join(MICRO_OPS)}")
            codes.append(str(MICRO_OPS.index(arch[n])))
        return f"64-{MICRO_SKELETON}-{codes[0]}_{''.join(codes[1:3])}_{''.join(codes[3:])}"

    def parse(self, key: str) -> Arch:
        if not isinstance(key, str):
            raise InvalidArchError(f"arch must be a string, got {type(key).__name__}; expected a "
                                   f"TNB101 micro string like 64-41414-3_32_132")
        m = _MICRO_RE.match(key.strip())
        if m is None:
            raise InvalidArchError(
                f"malformed TNB101 micro arch string {key!r}; expected 64-41414-a_bc_def with "
                f"codes 0-3 (0 none, 1 skip, 2 conv1x1, 3 conv3x3), e.g. 64-41414-3_32_132"
            )
        codes = "".join(m.groups())
        return {n: MICRO_OPS[int(c)] for n, c in zip(EDGE_NAMES, codes)}

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        self.key(arch)
        return TNB101Network(MICRO_SKELETON, arch, self.channels, num_classes)


@register_space("tnb101_macro")
class TNB101MacroSpace(SearchSpace):
    """TransNAS-Bench-101 macro space: 3,256 skeletons of ResNet basic blocks.

    4-6 modules of 2 basic blocks each. Keys are the official strings
    ``64-<module codes>-basic`` (1 normal, 2 channels x2, 3 resolution / 2, 4 both).

    Encoding: ``module_1`` .. ``module_4`` in 1..4 and ``module_5``, ``module_6`` in 0..4 (0 = no
    module; NASLib's tuple with its trailing zeros). Valid (TNB101's rules, as NASLib's sampler
    in ``naslib/search_spaces/transbench101/graph.py``): modules are consecutive (no module 6
    without module 5), 1-4 modules halve the resolution (codes 3, 4) and 1-3 double the channels
    (codes 2, 4).

    Args:
        channels: base channels (64 = the benchmark's network).
    """

    name: ClassVar[str] = "tnb101_macro"

    def __init__(self, *, channels: int = BASE_CHANNELS) -> None:
        if channels < 2 or channels % 2:
            raise InvalidArchError(f"TNB101 needs an even base channel count >= 2, got {channels}")
        self.channels = channels

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {n: optuna.distributions.CategoricalDistribution(MODULE_CODES if i < 4
                                                                else (0, *MODULE_CODES))
                for i, n in enumerate(MODULE_NAMES)}

    @property
    def all_valid(self) -> bool:
        return False

    def size(self) -> int:
        """3,256: for 4, 5 and 6 modules, (ways to place 1-4 halvings) x (1-3 doublings)."""
        return sum(sum(math.comb(n, p) for p in range(1, 5)) * sum(math.comb(n, q) for q in (1, 2, 3))
                   for n in (4, 5, 6))

    def skeleton(self, arch: Mapping[str, Any]) -> str:
        """The module codes of a valid arch, e.g. ``"1242"``; ``InvalidArchError`` otherwise."""
        _check_keys(arch, MODULE_NAMES, "TNB101 macro")
        codes = []
        for i, n in enumerate(MODULE_NAMES):
            v = arch[n]
            allowed = MODULE_CODES if i < 4 else (0, *MODULE_CODES)
            if isinstance(v, bool) or v not in allowed:
                raise InvalidArchError(f"TNB101 macro {n} = {v!r}; choose one of "
                                       f"{', '.join(map(str, allowed))}")
            codes.append(int(v))
        if codes[4] == 0 and codes[5] != 0:
            raise InvalidArchError("invalid TNB101 macro arch: module_6 is set but module_5 is 0 "
                                   "(no module); modules must be consecutive")
        codes = [c for c in codes if c]
        halvings = sum(c in (3, 4) for c in codes)
        doublings = sum(c in (2, 4) for c in codes)
        if not 1 <= halvings <= 4:
            raise InvalidArchError(f"invalid TNB101 macro arch {''.join(map(str, codes))}: "
                                   f"{halvings} modules halve the resolution (codes 3, 4); "
                                   f"TNB101 needs 1 to 4")
        if not 1 <= doublings <= 3:
            raise InvalidArchError(f"invalid TNB101 macro arch {''.join(map(str, codes))}: "
                                   f"{doublings} modules double the channels (codes 2, 4); "
                                   f"TNB101 needs 1 to 3")
        return "".join(map(str, codes))

    def key(self, arch: Mapping[str, Any]) -> str:
        return f"64-{self.skeleton(arch)}-basic"

    def parse(self, key: str) -> Arch:
        if not isinstance(key, str):
            raise InvalidArchError(f"arch must be a string, got {type(key).__name__}; expected a "
                                   f"TNB101 macro string like 64-1234-basic")
        m = _MACRO_RE.match(key.strip())
        if m is None:
            raise InvalidArchError(
                f"malformed TNB101 macro arch string {key!r}; expected 64-<4 to 6 module codes "
                f"1-4>-basic, e.g. 64-1234-basic"
            )
        codes = [int(c) for c in m.group(1)] + [0] * (6 - len(m.group(1)))
        arch = dict(zip(MODULE_NAMES, codes))
        self.skeleton(arch)
        return arch

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        return TNB101Network(self.skeleton(arch), None, self.channels, num_classes)
