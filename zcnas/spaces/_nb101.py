"""NAS-Bench-101 cell space: 7-vertex DAGs (21 edge bits) with 5 interior ops, 423,624 cells.

Semantics follow the official code, google-research/nasbench (read, not copied):

* ``nasbench/lib/model_spec.py`` ``ModelSpec._prune``: vertices that are not on a path from the
  input to the output are deleted; a cell whose input does not reach its output is invalid.
* ``nasbench/api.py`` ``_check_spec`` with ``nasbench/lib/config.py`` defaults: after pruning at
  most 7 vertices and at most 9 edges (``max_edges``); ops from ``available_ops`` =
  ``conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3`` (that order gives the hash labels 0, 1, 2).
* ``nasbench/lib/graph_util.py`` ``hash_module``: the isomorphism-invariant MD5 fingerprint that
  keys the NB101 data, computed on the pruned cell with labels ``[-1] + ops + [-2]``.
* ``nasbench/lib/model_builder.py`` and ``base_ops.py``: the network (see :class:`NB101Network`).

Keys are the module hashes. A hash cannot be inverted, so :meth:`NB101Space.parse` also takes a
*spec string* ``"matrix=<n*n bits, row-major>;ops=input,<op>,...,output"`` (the form
:meth:`NB101Space.spec` returns and ``encoding`` of the nb101 benchmark gives), and takes a bare
hash when this process has seen its cell (any ``key`` call, or a loaded nb101 benchmark) or
when the nb101 benchmark's tables at their default paths hold it (see :func:`known_spec`).
The process-wide memory holds one spec string per hash it has met.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import hashlib
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


OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")  # NB101 available_ops, in order
NUM_VERTICES = 7
MAX_EDGES = 9
INPUT, OUTPUT = "input", "output"
EDGES = tuple((i, j) for i in range(NUM_VERTICES) for j in range(i + 1, NUM_VERTICES))
EDGE_NAMES = tuple(f"edge_{i}_{j}" for i, j in EDGES)
OP_NAMES = tuple(f"op_{v}" for v in range(1, NUM_VERTICES - 1))
# Ying et al., "NAS-Bench-101: Towards Reproducible Neural Architecture Search", ICML 2019,
# Sec. 2.2: 423,624 unique cells after pruning and isomorphism (graph hashing).
NB101_SIZE = 423_624
# TF batch_normalization(momentum=0.997, epsilon=1e-5) in base_ops.py; torch's momentum is 1 - decay
BN_MOMENTUM = 1.0 - 0.997
BN_EPS = 1e-5

_HASH_RE = re.compile(r"^[0-9a-f]{32}$")
_SPEC_HINT = ("expected an NB101 spec 'matrix=<n*n 0/1, row-major>;ops=input,<op>,...,output' "
              f"(ops {', '.join(OPS)}) or the 32-hex hash of a known cell")

Matrix = tuple[tuple[int, ...], ...]

# hash -> spec string of every cell this process has keyed or loaded from a benchmark
_KNOWN: dict[str, str] = {}


# --- cells: pruning, hashing, spec strings ---------------------------------------------------------
def prune(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> tuple[Matrix, tuple[str, ...]] | None:
    """NB101's pruning: keep the vertices on an input -> output path (order kept).

    Returns None when the input does not reach the output.
    """
    n = len(ops)
    forward = {0}
    stack = [0]
    while stack:
        v = stack.pop()
        for w in range(v + 1, n):
            if matrix[v][w] and w not in forward:
                forward.add(w)
                stack.append(w)
    backward = {n - 1}
    stack = [n - 1]
    while stack:
        v = stack.pop()
        for w in range(v):
            if matrix[w][v] and w not in backward:
                backward.add(w)
                stack.append(w)
    keep = sorted(forward & backward)
    if len(keep) < 2:
        return None
    pruned = tuple(tuple(int(bool(matrix[a][b])) for b in keep) for a in keep)
    return pruned, tuple(ops[v] for v in keep)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def graph_hash(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """``graph_util.hash_module``: an isomorphism-invariant MD5 fingerprint of a labelled
    directed graph.

    Each vertex starts from the MD5 of ``str((out_degree, in_degree, label))``; then, ``n`` times,
    every vertex takes the MD5 of its sorted in-neighbour hashes, ``|``, its sorted out-neighbour
    hashes, ``|``, its own hash. The fingerprint is the MD5 of ``str(sorted(hashes))``.
    """
    n = len(labels)
    ins = [sum(int(matrix[w][v]) for w in range(n)) for v in range(n)]
    outs = [sum(int(matrix[v][w]) for w in range(n)) for v in range(n)]
    hashes = [_md5(str((outs[v], ins[v], int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5("".join(sorted(hashes[w] for w in range(n) if matrix[w][v])) + "|"
                 + "".join(sorted(hashes[w] for w in range(n) if matrix[v][w])) + "|"
                 + hashes[v])
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def module_hash(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> str:
    """The NB101 module hash of a pruned cell (``ModelSpec.hash_spec``): :func:`graph_hash`
    with labels ``-1`` (input), ``OPS.index(op)`` and ``-2`` (output)."""
    return graph_hash(matrix, [-1] + [OPS.index(op) for op in ops[1:-1]] + [-2])


def spec_string(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> str:
    """``"matrix=<bits>;ops=<ops>"`` for a cell (row-major n*n bits, ops comma separated)."""
    bits = "".join(str(int(bool(x))) for row in matrix for x in row)
    return f"matrix={bits};ops={','.join(ops)}"


def parse_spec(text: str) -> tuple[Matrix, tuple[str, ...]]:
    """The (matrix, ops) of a spec string; ``InvalidArchError`` naming the problem otherwise.

    The cell may be unpruned; it must have 2..7 vertices, ``input`` first, ``output`` last, NB101
    ops in between and a strictly upper-triangular matrix.
    """
    parts = dict(p.partition("=")[::2] for p in text.strip().split(";"))
    if set(parts) != {"matrix", "ops"}:
        raise InvalidArchError(f"malformed NB101 spec {text!r}; {_SPEC_HINT}")
    ops = tuple(parts["ops"].split(","))
    bits = parts["matrix"]
    n = len(ops)
    if not 2 <= n <= NUM_VERTICES:
        raise InvalidArchError(f"NB101 spec {text!r} has {n} vertices; a cell has 2 to "
                               f"{NUM_VERTICES}")
    if len(bits) != n * n or set(bits) - {"0", "1"}:
        raise InvalidArchError(f"NB101 spec {text!r}: matrix must be {n * n} characters 0/1 for "
                               f"{n} ops; {_SPEC_HINT}")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidArchError(f"NB101 spec {text!r}: the first op must be 'input' and the last "
                               f"'output'")
    bad = [op for op in ops[1:-1] if op not in OPS]
    if bad:
        raise InvalidArchError(f"unknown NB101 op {bad[0]!r} in {text!r}; ops are {', '.join(OPS)}")
    matrix = tuple(tuple(int(bits[i * n + j]) for j in range(n)) for i in range(n))
    if any(matrix[i][j] for i in range(n) for j in range(i + 1)):
        raise InvalidArchError(f"NB101 spec {text!r}: the matrix must be strictly upper "
                               f"triangular (edges go from lower to higher vertices)")
    return matrix, ops


def remember_specs(specs: Mapping[str, str] | Iterable[str]) -> None:
    """Make bare hashes parseable in this process: ``{hash: spec}`` or spec strings (a hash
    already known keeps its first spec)."""
    if isinstance(specs, Mapping):
        for k, spec in specs.items():
            _KNOWN.setdefault(k, spec)
        return
    for spec in specs:
        matrix, ops = parse_spec(spec)
        pruned = prune(matrix, ops)
        if pruned is not None:
            _KNOWN.setdefault(module_hash(*pruned), spec_string(*pruned))


def known_spec(module_hash_: str) -> str | None:
    """The spec string of a hash seen in this process (keyed by this space, or loaded with the
    ``nb101`` benchmark's tables, which remember their cells), else None. The space never reads
    benchmark files itself: the benchmark sits above it (``encoding(hash)`` gives the spec)."""
    return _KNOWN.get(module_hash_)


# --- the network (model_builder.py / base_ops.py) --------------------------------------------------
def vertex_channels(in_channels: int, out_channels: int, matrix: Matrix) -> list[int]:
    """``model_builder.compute_vertex_channels``: the output is split evenly (the first vertices
    get the remainder) over the vertices that feed it; any other interior vertex takes the
    largest channel count among the vertices it feeds."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = in_channels, out_channels
    if n == 2:
        return channels
    fan_in = sum(matrix[v][n - 1] for v in range(1, n - 1))
    base, extra = divmod(out_channels, fan_in)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            channels[v] = base + (1 if extra > 0 else 0)
            extra -= 1
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            for w in range(v + 1, n - 1):
                if matrix[v][w]:
                    channels[v] = max(channels[v], channels[w])
    return channels


class ConvBNReLU(nn.Sequential):
    """``base_ops.conv_bn_relu``: conv (stride 1, 'same', no bias) + BN + ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride=1, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=False),
        )


def make_op(name: str, channels: int) -> nn.Module:
    if name == "conv3x3-bn-relu":
        return ConvBNReLU(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBNReLU(channels, channels, 1)
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise InvalidArchError(f"unknown NB101 op {name!r}; ops are {', '.join(OPS)}")


class NB101Cell(nn.Module):
    """``model_builder.build_module`` for a pruned cell.

    Vertex ``t`` sums its interior inputs (cut to its channel count) and a 1x1 conv-BN-ReLU
    projection of the cell input if there is an input edge, then applies its op. The output
    concatenates the vertices that feed it (in vertex order) and adds a projection of the input
    when the input feeds it too; a cell of only input -> output is that projection.
    """

    def __init__(self, matrix: Matrix, ops: Sequence[str], in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.matrix = matrix
        n = len(matrix)
        self.channels = vertex_channels(in_channels, out_channels, matrix)
        self.ops = nn.ModuleDict()
        self.proj = nn.ModuleDict()
        for t in range(1, n - 1):
            self.ops[str(t)] = make_op(ops[t], self.channels[t])
            if matrix[0][t]:
                self.proj[str(t)] = ConvBNReLU(in_channels, self.channels[t], 1)
        if matrix[0][n - 1]:
            self.proj[str(n - 1)] = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n = self.matrix, len(self.matrix)
        tensors = [x]
        for t in range(1, n - 1):
            c = self.channels[t]
            inputs = [tensors[s][:, :c] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                inputs.append(self.proj[str(t)](x))
            total = inputs[0]
            for extra in inputs[1:]:
                total = total + extra
            tensors.append(self.ops[str(t)](total))
        to_output = [tensors[t] for t in range(1, n - 1) if m[t][n - 1]]
        if not to_output:
            return self.proj[str(n - 1)](x)
        out = to_output[0] if len(to_output) == 1 else torch.cat(to_output, dim=1)
        if m[0][n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """``model_builder.build_model_fn``: conv3x3-BN-ReLU stem (128), ``num_stacks`` stacks of
    ``modules_per_stack`` cells, a 2x2 max-pool and channel doubling before every stack but the
    first, global average pooling and a dense layer (with bias)."""

    def __init__(self, matrix: Matrix, ops: Sequence[str], num_classes: int = 10,
                 stem_channels: int = 128, num_stacks: int = 3, modules_per_stack: int = 3) -> None:
        super().__init__()
        self.stem = ConvBNReLU(3, stem_channels, 3)
        layers: list[nn.Module] = []
        c_in = c = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                c *= 2
            for _ in range(modules_per_stack):
                layers.append(NB101Cell(matrix, ops, c_in, c))
                c_in = c
        self.cells = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.cells(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


# --- the space ---------------------------------------------------------------------------------
@register_space("nb101")
class NB101Space(SearchSpace):
    """NAS-Bench-101 cells. An encoding is ``edge_i_j`` (0/1, ``0 <= i < j <= 6``) plus
    ``op_1..op_5``; it is valid when, after NB101's pruning, the input reaches the output and at
    most 9 edges remain. Keys are NB101 module hashes (isomorphic cells share one).

    :meth:`parse` takes a spec string (any vertex order, pruned or not) or a hash this process
    knows: one it has keyed (any :class:`NB101Space`), or one of the nb101 benchmark's cells.

    Args:
        stem_channels, num_stacks, modules_per_stack: the network skeleton (NB101: 128, 3, 3);
            smaller values give a cheap stand-in with the same cells, for tests.
    """

    name: ClassVar[str] = "nb101"

    def __init__(self, *, stem_channels: int = 128, num_stacks: int = 3,
                 modules_per_stack: int = 3) -> None:
        self.stem_channels = stem_channels
        self.num_stacks = num_stacks
        self.modules_per_stack = modules_per_stack

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        out: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.CategoricalDistribution((0, 1)) for name in EDGE_NAMES}
        out.update({name: optuna.distributions.CategoricalDistribution(OPS) for name in OP_NAMES})
        return out

    @property
    def all_valid(self) -> bool:
        return False

    def size(self) -> int:
        return NB101_SIZE

    # -- encodings -> cells --------------------------------------------------------------------
    def cell(self, arch: Mapping[str, Any]) -> tuple[Matrix, tuple[str, ...]]:
        """The pruned (matrix, ops) of a valid encoding; ``InvalidArchError`` with the reason."""
        names = EDGE_NAMES + OP_NAMES
        missing = [n for n in names if n not in arch]
        extra = [n for n in arch if n not in names]
        if missing or extra:
            raise InvalidArchError(f"NB101 arch needs the keys edge_i_j (0 <= i < j <= 6) and "
                                   f"op_1..op_5; missing {missing}, unexpected {extra}")
        for name in EDGE_NAMES:
            if arch[name] not in (0, 1):
                raise InvalidArchError(f"NB101 {name} must be 0 or 1, got {arch[name]!r}")
        for name in OP_NAMES:
            if arch[name] not in OPS:
                raise InvalidArchError(f"unknown NB101 op {arch[name]!r} on {name}; ops are "
                                       f"{', '.join(OPS)}")
        matrix = [[0] * NUM_VERTICES for _ in range(NUM_VERTICES)]
        for (i, j), name in zip(EDGES, EDGE_NAMES):
            matrix[i][j] = int(arch[name])
        ops = (INPUT, *(arch[n] for n in OP_NAMES), OUTPUT)
        pruned = prune(matrix, ops)
        if pruned is None:
            raise InvalidArchError("NB101 cell is disconnected: no path from the input to the "
                                   "output, so NB101 has no such network")
        edges = sum(map(sum, pruned[0]))
        if edges > MAX_EDGES:
            raise InvalidArchError(f"NB101 cell has {edges} edges after pruning; NB101 trained "
                                   f"only cells with at most {MAX_EDGES}")
        return pruned

    def key(self, arch: Mapping[str, Any]) -> str:
        matrix, ops = self.cell(arch)
        k = module_hash(matrix, ops)
        if k not in _KNOWN:
            _KNOWN[k] = spec_string(matrix, ops)
        return k

    def spec(self, arch: Mapping[str, Any]) -> str:
        """The pruned spec string of ``arch`` (what :meth:`parse` reads back)."""
        return spec_string(*self.cell(arch))

    def encode(self, matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Arch:
        """The encoding of a cell of ``n <= 7`` vertices: its vertices keep their order, the
        output moves to vertex 6 and the unused vertices get no edges (so they are pruned)."""
        n = len(ops)
        slot = list(range(n - 1)) + [NUM_VERTICES - 1]
        arch: Arch = {name: 0 for name in EDGE_NAMES}
        for i in range(n):
            for j in range(i + 1, n):
                if matrix[i][j]:
                    arch[f"edge_{slot[i]}_{slot[j]}"] = 1
        for v, name in enumerate(OP_NAMES, start=1):
            arch[name] = ops[v] if v < n - 1 else OPS[0]
        return {name: arch[name] for name in EDGE_NAMES + OP_NAMES}

    def parse(self, key: str) -> Arch:
        if not isinstance(key, str):
            raise InvalidArchError(f"NB101 arch must be a string, got {type(key).__name__}; "
                                   f"{_SPEC_HINT}")
        text = key.strip()
        if _HASH_RE.match(text):
            spec = known_spec(text)
            if spec is None:
                raise InvalidArchError(
                    f"NB101 hash {text} is not known to this process (a hash cannot be "
                    f"inverted); pass its spec string 'matrix=...;ops=...' (NB101Space.spec) "
                    f"or load it first with get_benchmark('nb101') (its encoding(hash))"
                )
            text = spec
        arch = self.encode(*parse_spec(text))
        self.key(arch)  # an invalid cell (disconnected, too many edges) has no key
        return arch

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        matrix, ops = self.cell(arch)
        return NB101Network(matrix, ops, num_classes, self.stem_channels, self.num_stacks,
                            self.modules_per_stack)
