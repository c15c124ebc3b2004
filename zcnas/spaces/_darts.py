"""The DARTS cell space (normal + reduction cell) and its evaluation network.

An architecture is a DARTS ``Genotype``: in each of the two cells, intermediate node k
(k = 2..5) sums two ``op(input)`` terms whose inputs are earlier nodes (0 and 1 are the two
previous cells, 2..k-1 the earlier intermediate nodes); the cell output concatenates nodes
2..5. The network is the DARTS evaluation network ``NetworkCIFAR`` of quark0/darts
(``cnn/model.py``, ``cnn/operations.py``), re-written here: a 3x3 stem with ``3 * C`` channels
and BN, ``layers`` cells with reduction cells (channels x2, stride 2) at ``layers // 3`` and
``2 * layers // 3``, ``FactorizedReduce`` preprocessing after a reduction, ReLU-conv1x1-BN
preprocessing otherwise, global average pooling and a linear classifier. Drop-path is 0 at init
and the auxiliary head is off unless ``auxiliary=True``.

Registered spaces (one network family, three benchmark protocols):

* ``darts``: C=36, 20 cells, the 7 DARTS ops, distinct inputs per node (the DARTS / Yang et al.
  600-epoch evaluation protocol of the ``darts_yang214`` benchmark).
* ``nb301``: C=32, 8 cells, the NAS-Bench-301 training fidelity (also NASLib's
  ``naslib/search_spaces/nasbench301/graph.py`` macro graph: channels 32/64/128, 2 normal cells
  per stage).
* ``darts_swap``: the space of the SWAP-NAS sample (``darts_swap1000``): 8 ops including
  ``none`` (DARTS' ``Zero``) and *no* distinct-input rule: SWAP's genotypes often feed both
  terms of a node from the same input.

Keys are canonical ``Genotype(...)`` strings (the repr of the DARTS namedtuple with a flat list
and ``range(2, 6)``): within each node the two (op, input) pairs are sorted by input, then op
(the node's sum is symmetric), so equal cells have equal keys. :meth:`DartsSpace.parse` accepts
that form and the shared files' forms (pairs nested per node, ``concat=[2, 3, 4, 5]``).

``variant="naslib"`` builds NASLib's NB301 network instead of the DARTS one: the same graph,
but cell-op BatchNorms without affine parameters and a non-affine BatchNorm after each pooling
op (NASLib ``naslib/search_spaces/core/primitives.py`` ``MaxPool``/``AvgPool(use_bn=True)``).
That is the network behind NB-Suite-Zero's NB301 proxy scores (its ``params`` agree exactly);
the accuracies were produced by the DARTS-style network.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
import math
from typing import Any
from typing import ClassVar

import optuna
import torch
from torch import nn

from zcnas.exceptions import InvalidArchError
from zcnas.spaces._base import Arch
from zcnas.spaces._base import SearchSpace
from zcnas.spaces._registry import register_space


DARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
NONE_OP = "none"
CELLS = ("normal", "reduce")
NODES = (2, 3, 4, 5)
CONCAT = (2, 3, 4, 5)
VARIANTS = ("darts", "naslib")
_HINT = ("expected a DARTS genotype like Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), "
         "...8 pairs], normal_concat=range(2, 6), reduce=[...8 pairs], reduce_concat=range(2, 6))")


def param_names(cell: str, node: int) -> tuple[str, str, str, str]:
    """Encoding parameters of one node: (input of term 0, op of term 0, input 1, op 1)."""
    p = f"{cell}_node{node}"
    return f"{p}_in0", f"{p}_op0", f"{p}_in1", f"{p}_op1"


PARAM_NAMES = tuple(n for cell in CELLS for node in NODES for n in param_names(cell, node))
Pair = tuple[str, int]


def node_count(n_inputs: int, n_ops: int, distinct_inputs: bool) -> int:
    """Distinct (unordered) pairs of (op, input) terms of a node with ``n_inputs`` inputs."""
    if distinct_inputs:
        return math.comb(n_inputs, 2) * n_ops * n_ops
    items = n_inputs * n_ops
    return items * (items + 1) // 2  # multisets of size 2


# --- the genotype string ---------------------------------------------------------------------
def _concat_value(node: ast.expr, text: str) -> tuple[int, ...]:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords):
        try:
            return tuple(range(*(ast.literal_eval(a) for a in node.args)))
        except (ValueError, TypeError):
            pass
    else:
        try:
            value = ast.literal_eval(node)
        except ValueError:
            value = None
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
            return tuple(value)
    raise InvalidArchError(f"malformed DARTS genotype concat in {text!r}; {_HINT}")


def _cell_pairs(node: ast.expr, text: str, cell: str) -> list[Pair]:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise InvalidArchError(f"malformed DARTS genotype {cell} cell in {text!r}; {_HINT}") from None
    if not isinstance(value, (list, tuple)):
        raise InvalidArchError(f"malformed DARTS genotype {cell} cell in {text!r}; {_HINT}")
    if value and all(isinstance(v, (list, tuple)) and len(v) == 2
                     and all(isinstance(p, (list, tuple)) for p in v) for v in value):
        value = [p for node_pairs in value for p in node_pairs]  # pairs nested per node
    pairs: list[Pair] = []
    for p in value:
        if not (isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str)
                and isinstance(p[1], int) and not isinstance(p[1], bool)):
            raise InvalidArchError(
                f"malformed DARTS genotype {cell} cell in {text!r}: {p!r} is not an "
                f"('op', input) pair; {_HINT}"
            )
        pairs.append((p[0], p[1]))
    if len(pairs) != 2 * len(NODES):
        raise InvalidArchError(
            f"DARTS genotype {cell} cell in {text!r} has {len(pairs)} (op, input) pairs; "
            f"it needs {2 * len(NODES)} (two per node 2..5)"
        )
    return pairs


def parse_genotype(text: str) -> dict[str, list[Pair]]:
    """``{"normal": [8 pairs], "reduce": [8 pairs]}`` of a ``Genotype(...)`` string (read with
    ``ast``, never evaluated). Raises ``InvalidArchError`` for anything else."""
    if not isinstance(text, str):
        raise InvalidArchError(f"arch must be a string, got {type(text).__name__}; {_HINT}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise InvalidArchError(f"malformed DARTS genotype {text!r}; {_HINT}") from None
    call = tree.body
    fields = ("normal", "normal_concat", "reduce", "reduce_concat")
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == "Genotype" and not call.args
            and sorted(k.arg or "" for k in call.keywords) == sorted(fields)):
        raise InvalidArchError(f"malformed DARTS genotype {text!r}; {_HINT}")
    kw = {k.arg: k.value for k in call.keywords}
    out = {}
    for cell in CELLS:
        concat = _concat_value(kw[f"{cell}_concat"], text)
        if concat != CONCAT:
            raise InvalidArchError(
                f"DARTS genotype {text!r} concatenates nodes {list(concat)} in the {cell} cell; "
                f"this space always concatenates nodes 2..5 (range(2, 6))"
            )
        out[cell] = _cell_pairs(kw[cell], text, cell)
    return out


def format_genotype(cells: Mapping[str, list[Pair]]) -> str:
    """The canonical key string (the DARTS namedtuple repr with ``range(2, 6)``)."""
    def cell_text(pairs: list[Pair]) -> str:
        return "[" + ", ".join(f"({op!r}, {i})" for op, i in pairs) + "]"
    return (f"Genotype(normal={cell_text(cells['normal'])}, normal_concat=range(2, 6), "
            f"reduce={cell_text(cells['reduce'])}, reduce_concat=range(2, 6))")


# --- operations (DARTS cnn/operations.py semantics) --------------------------------------------
class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked (ReLU, depthwise k x k, pointwise 1x1, BN) blocks; only the first strides."""

    def __init__(self, c: int, kernel: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=stride, padding=padding, groups=c, bias=False),
            nn.Conv2d(c, c, 1, padding=0, bias=False),
            nn.BatchNorm2d(c, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=1, padding=padding, groups=c, bias=False),
            nn.Conv2d(c, c, 1, padding=0, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, dilated depthwise k x k (dilation 2), pointwise 1x1, BN."""

    def __init__(self, c: int, kernel: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride=stride, padding=padding, dilation=2, groups=c,
                      bias=False),
            nn.Conv2d(c, c, 1, padding=0, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convs, the second shifted by one pixel."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise InvalidArchError(f"FactorizedReduce needs an even channel count, got {c_out}; "
                                   f"use an even number of channels")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Zero(nn.Module):
    """DARTS' ``none``: zeros of the (strided) input's shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


def make_op(name: str, c: int, stride: int, variant: str) -> nn.Module:
    """One DARTS operation on ``c`` channels (``variant="naslib"``: non-affine BNs, BN after
    pooling)."""
    affine = variant == "darts"
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool: nn.Module = (nn.MaxPool2d(3, stride=stride, padding=1) if name == "max_pool_3x3"
                           else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False))
        return pool if affine else nn.Sequential(pool, nn.BatchNorm2d(c, affine=False))
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=affine)
    if name == "sep_conv_3x3":
        return SepConv(c, 3, stride, 1, affine)
    if name == "sep_conv_5x5":
        return SepConv(c, 5, stride, 2, affine)
    if name == "dil_conv_3x3":
        return DilConv(c, 3, stride, 2, affine)
    if name == "dil_conv_5x5":
        return DilConv(c, 5, stride, 4, affine)
    if name == NONE_OP:
        return Zero(stride)
    raise InvalidArchError(f"unknown DARTS op {name!r}; ops are {', '.join((NONE_OP, *DARTS_OPS))}")


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Drop whole samples of a path with probability ``drop_prob`` (rescaling the kept ones)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class DartsCell(nn.Module):
    """One cell: two preprocessed inputs, 4 nodes of two (op, input) terms, concat of 2..5."""

    def __init__(self, pairs: list[Pair], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool, variant: str) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                                       else ReLUConvBN(c_prev_prev, c, 1, 1, 0))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.indices = [i for _, i in pairs]
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and i < 2 else 1, variant) for op, i in pairs
        )
        self.multiplier = len(CONCAT)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(NODES)):
            terms = []
            for j in (2 * k, 2 * k + 1):
                op = self.ops[j]
                h = op(states[self.indices[j]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                terms.append(h)
            states.append(terms[0] + terms[1])
        return torch.cat([states[i] for i in CONCAT], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS' auxiliary classifier on the 8x8 feature map after the second reduction."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """DARTS ``NetworkCIFAR``. ``forward`` returns the logits; with ``auxiliary=True`` the
    auxiliary logits of the last training-mode forward are in ``logits_aux``. Drop-path is
    ``drop_path_prob`` (0 at init, as zero-cost proxies need)."""

    def __init__(self, cells: Mapping[str, list[Pair]], channels: int = 36, layers: int = 20,
                 num_classes: int = 10, auxiliary: bool = False, variant: str = "darts") -> None:
        super().__init__()
        self.layers = layers
        self.drop_path_prob = 0.0
        self.logits_aux: torch.Tensor | None = None
        c_curr = 3 * channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        self.aux_position = 2 * layers // 3
        reduction_prev = False
        c_aux = c_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = DartsCell(list(cells["reduce" if reduction else "normal"]), c_prev_prev, c_prev,
                             c_curr, reduction, reduction_prev, variant)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_position:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[stem(x), cell_1 output, ..., cell_L output]`` (the stages AZ-NAS reads)."""
        s0 = s1 = self.stem(x)
        feats = [s1]
        self.logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            feats.append(s1)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                self.logits_aux = self.auxiliary_head(s1)
        return feats

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_pooling(self.stage_features(x)[-1]).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


# --- the space -------------------------------------------------------------------------------
@register_space("darts")
class DartsSpace(SearchSpace):
    """DARTS normal + reduction cells on the DARTS evaluation network (C=36, 20 cells).

    Encoding: for each cell (normal, reduce) and node k = 2..5 the parameters
    ``{cell}_node{k}_in0`` / ``_in1`` (input, 0..k-1) and ``_op0`` / ``_op1`` (operation). With
    distinct inputs required, 1 in 25 uniformly drawn encodings is valid (per node (k-1)/k).

    Args:
        channels: initial channels C (the stem has 3*C).
        layers: number of cells (reductions at layers//3 and 2*layers//3).
        auxiliary: add DARTS' auxiliary head (its logits go to ``net.logits_aux``).
        with_none: add DARTS' ``none`` (zero) op to the 7 evaluation ops.
        distinct_inputs: the two terms of a node must read different inputs (the DARTS
            discretisation and NB301 rule); an encoding that breaks it is invalid.
        variant: ``"darts"`` (quark0/darts evaluation network) or ``"naslib"`` (NASLib's NB301
            network: non-affine cell-op BNs, BN after pooling; same parameter count as NASLib).
    """

    name: ClassVar[str] = "darts"

    def __init__(self, *, channels: int = 36, layers: int = 20, auxiliary: bool = False,
                 with_none: bool = False, distinct_inputs: bool = True,
                 variant: str = "darts") -> None:
        if variant not in VARIANTS:
            raise InvalidArchError(f"unknown DARTS network variant {variant!r}; choose "
                                   f"{' or '.join(VARIANTS)}")
        if layers < 3 or channels < 1:
            raise InvalidArchError(f"a DARTS network needs layers >= 3 and channels >= 1, got "
                                   f"layers={layers}, channels={channels}")
        self.channels = channels
        self.layers = layers
        self.auxiliary = auxiliary
        self.with_none = with_none
        self.distinct_inputs = distinct_inputs
        self.variant = variant

    @property
    def ops(self) -> tuple[str, ...]:
        """The operations of this space, in encoding order."""
        return ((NONE_OP,) if self.with_none else ()) + DARTS_OPS

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        out: dict[str, optuna.distributions.BaseDistribution] = {}
        for cell in CELLS:
            for node in NODES:
                in0, op0, in1, op1 = param_names(cell, node)
                inputs = optuna.distributions.CategoricalDistribution(tuple(range(node)))
                ops = optuna.distributions.CategoricalDistribution(self.ops)
                out.update({in0: inputs, op0: ops, in1: inputs, op1: ops})
        return out

    @property
    def all_valid(self) -> bool:
        return not self.distinct_inputs

    def size(self) -> int:
        """Number of distinct genotypes (keys): per cell the product over nodes k = 2..5 of the
        unordered pairs of (op, input) terms, squared for the two independent cells."""
        per_cell = math.prod(node_count(k, len(self.ops), self.distinct_inputs) for k in NODES)
        return per_cell * per_cell

    def cells(self, arch: Mapping[str, Any]) -> dict[str, list[Pair]]:
        """The canonical (op, input) pairs of both cells; ``InvalidArchError`` if invalid."""
        missing = [n for n in PARAM_NAMES if n not in arch]
        extra = [n for n in arch if n not in PARAM_NAMES]
        if missing or extra:
            raise InvalidArchError(
                f"DARTS arch needs the 32 keys {PARAM_NAMES[0]} ... {PARAM_NAMES[-1]}; "
                f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}, unexpected {extra[:4]}"
            )
        ops = self.ops
        out: dict[str, list[Pair]] = {}
        for cell in CELLS:
            pairs: list[Pair] = []
            for node in NODES:
                in0, op0, in1, op1 = param_names(cell, node)
                terms = []
                for pin, pop in ((in0, op0), (in1, op1)):
                    op, src = arch[pop], arch[pin]
                    if op not in ops:
                        hint = (" (only the darts_swap space, or with_none=True, has 'none')"
                                if op == NONE_OP else "")
                        raise InvalidArchError(f"unknown DARTS op {op!r} on {pop}; ops are "
                                               f"{', '.join(ops)}{hint}")
                    if isinstance(src, bool) or not isinstance(src, int) or not 0 <= src < node:
                        raise InvalidArchError(f"{pin} = {src!r}: node {node} reads an input "
                                               f"0..{node - 1}")
                    terms.append((op, src))
                if self.distinct_inputs and terms[0][1] == terms[1][1]:
                    raise InvalidArchError(
                        f"invalid DARTS cell: {cell} node {node} reads input {terms[0][1]} twice; "
                        f"the two terms of a node need distinct inputs (or use the darts_swap "
                        f"space / distinct_inputs=False)"
                    )
                terms.sort(key=lambda t: (t[1], ops.index(t[0])))
                pairs.extend(terms)
            out[cell] = pairs
        return out

    def key(self, arch: Mapping[str, Any]) -> str:
        return format_genotype(self.cells(arch))

    def parse(self, key: str) -> Arch:
        cells = parse_genotype(key)
        arch: Arch = {}
        for cell in CELLS:
            pairs = cells[cell]
            for k, node in enumerate(NODES):
                in0, op0, in1, op1 = param_names(cell, node)
                (a_op, a_in), (b_op, b_in) = pairs[2 * k], pairs[2 * k + 1]
                arch.update({in0: a_in, op0: a_op, in1: b_in, op1: b_op})
        arch = {n: arch[n] for n in PARAM_NAMES}
        self.cells(arch)  # validates ops, inputs and the distinct-input rule
        return arch

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        return DartsNetwork(self.cells(arch), self.channels, self.layers, num_classes,
                            self.auxiliary, self.variant)


@register_space("nb301")
class NB301Space(DartsSpace):
    """DARTS cells at NAS-Bench-301's training fidelity (C=32, 8 cells).

    That is the network of NB301's training data, which its surrogate models;
    ``variant="naslib"`` gives NASLib's copy (behind NB-Suite-Zero's proxy scores)."""

    name: ClassVar[str] = "nb301"

    def __init__(self, *, channels: int = 32, layers: int = 8, auxiliary: bool = False,
                 variant: str = "darts") -> None:
        super().__init__(channels=channels, layers=layers, auxiliary=auxiliary, variant=variant)


@register_space("darts_swap")
class DartsSwapSpace(DartsSpace):
    """DARTS cells of the SWAP-NAS sample: 8 ops with ``none``, inputs may repeat in a node.

    The network is the DARTS evaluation network (C=36, 20 cells); the SWAP sample's own
    training network and recipe are not published (see the ``darts_swap1000`` benchmark).

    Sampling draws encodings uniformly, so a node with two identical terms is half as likely as
    one with two different terms."""

    name: ClassVar[str] = "darts_swap"

    def __init__(self, *, channels: int = 36, layers: int = 20, auxiliary: bool = False) -> None:
        super().__init__(channels=channels, layers=layers, auxiliary=auxiliary, with_none=True,
                         distinct_inputs=False)
