"""The DARTS spaces (darts, nb301, darts_swap): keys, sizes, validity, networks and their
parameter counts against published values."""

from __future__ import annotations

import ast
from collections import Counter
import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from zcnas.exceptions import InvalidArchError
from zcnas.spaces import get_space
from zcnas.spaces._darts import DartsSpace
from zcnas.spaces._darts import param_names


# DARTS (second order) from quark0/darts cnn/genotypes.py
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
# quark0/darts cnn/train.py prints "param size = 3.349342MB" for DARTS_V2, C=36, 20 cells
# (count_parameters_in_MB, auxiliary head excluded); the DARTS paper rounds it to 3.3M.
DARTS_V2_PARAMS = 3_349_342


def _rows(shared: Path, name: str) -> list[dict[str, str]]:
    with (shared / name).open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def yang(shared_data: Path) -> list[dict[str, str]]:
    return _rows(shared_data, "darts/darts_random214_yang2020.csv")


@pytest.fixture(scope="module")
def swap(shared_data: Path) -> list[dict[str, str]]:
    return _rows(shared_data, "darts/darts_random1000_swap.csv")


@pytest.fixture(scope="module")
def nb301(shared_data: Path) -> list[dict[str, str]]:
    return _rows(shared_data, "nb301/nb301_zc_proxies_naslib_subset.csv")


def raw_nodes(genotype: str) -> dict[str, list[Counter]]:
    """Per cell, per node, the multiset of (op, input) pairs, read independently of zcnas."""
    call = ast.parse(genotype, mode="eval").body
    out = {}
    for kw in call.keywords:
        if kw.arg in ("normal", "reduce"):
            pairs = ast.literal_eval(kw.value)
            if isinstance(pairs[0], list):
                pairs = [p for node in pairs for p in node]
            out[kw.arg] = [Counter(map(tuple, pairs[2 * k:2 * k + 2])) for k in range(4)]
    return out


def check_round_trip(space: DartsSpace, genotype: str) -> str:
    arch = space.parse(genotype)
    key = space.key(arch)
    assert key.startswith("Genotype(normal=[") and key.endswith("reduce_concat=range(2, 6))")
    assert space.key(space.parse(key)) == key
    assert raw_nodes(key) == raw_nodes(genotype)  # same cells, only the order may change
    return key


def test_round_trip_yang214(yang: list[dict[str, str]]) -> None:
    space = get_space("darts")
    keys = {check_round_trip(space, row["genotype"]) for row in yang}
    assert len(keys) == 214


def test_round_trip_nb301(nb301: list[dict[str, str]]) -> None:
    space = get_space("nb301")
    keys = [check_round_trip(space, row["genotype"]) for row in nb301]
    assert len(keys) == 1225 and len(set(keys)) == 1218  # 7 archs are in both runs


def test_round_trip_swap1000(swap: list[dict[str, str]]) -> None:
    space = get_space("darts_swap")
    keys = {check_round_trip(space, row["genotype"]) for row in swap}
    assert len(keys) == 1000
    darts = get_space("darts")
    reasons: Counter = Counter()
    for row in swap:
        try:
            darts.parse(row["genotype"])
        except InvalidArchError as err:
            message = str(err)
            reasons["none" if "'none'" in message else "twice" if "twice" in message
                    else message] += 1
        else:
            reasons["valid in darts"] += 1
    assert set(reasons) == {"none", "twice", "valid in darts"}, reasons
    assert reasons["none"] + reasons["twice"] > 900


def test_key_is_canonical_within_a_node() -> None:
    space = get_space("darts")
    arch = space.parse(DARTS_V2)
    in0, op0, in1, op1 = param_names("normal", 4)
    swapped = {**arch, in0: arch[in1], op0: arch[op1], in1: arch[in0], op1: arch[op0]}
    assert swapped != arch
    assert space.key(swapped) == space.key(arch)
    other = {**arch, op0: "sep_conv_5x5" if arch[op0] != "sep_conv_5x5" else "dil_conv_5x5"}
    assert space.key(other) != space.key(arch)
    # node 4 of DARTS_V2 is [('sep_conv_3x3', 1), ('skip_connect', 0)]: the key sorts by input
    assert "('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 2)" \
        in space.key(arch)
    # the shared files' nested form and the flat form are the same genotype
    nested = ("Genotype(normal=[[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], [('sep_conv_3x3', 0), "
              "('sep_conv_3x3', 1)], [('sep_conv_3x3', 1), ('skip_connect', 0)], [('skip_connect', 0),"
              " ('dil_conv_3x3', 2)]], normal_concat=range(2, 6), reduce=[[('max_pool_3x3', 0), "
              "('max_pool_3x3', 1)], [('skip_connect', 2), ('max_pool_3x3', 1)], [('max_pool_3x3', 0),"
              " ('skip_connect', 2)], [('skip_connect', 2), ('max_pool_3x3', 1)]], "
              "reduce_concat=range(2, 6))")
    assert space.key(space.parse(nested)) == space.key(arch)


def _node_keys(space: DartsSpace, cell: str, node: int) -> int:
    """Distinct keys over every encoding of one node (the rest fixed), through key() only."""
    base = space.parse(DARTS_V2)
    in0, op0, in1, op1 = param_names(cell, node)
    keys = set()
    for a in range(node):
        for b in range(node):
            for x in space.ops:
                for y in space.ops:
                    arch = {**base, in0: a, in1: b, op0: x, op1: y}
                    if space.is_valid(arch):
                        keys.add(space.key(arch))
    return len(keys)


@pytest.mark.parametrize("name", ["darts", "darts_swap"])
def test_size_is_exact(name: str) -> None:
    space = get_space(name)
    per_cell = [_node_keys(space, "normal", k) for k in (2, 3, 4, 5)]
    assert per_cell == [_node_keys(space, "reduce", k) for k in (2, 3, 4, 5)]
    assert space.size() == int(np.prod(per_cell, dtype=object)) ** 2
    assert isinstance(space.size(), int)


def test_size_closed_forms() -> None:
    # distinct inputs: C(k, 2) input pairs x 7^2 op pairs per node -> (180 * 7**8) ** 2 ~ 1.08e18
    assert get_space("darts").size() == (1 * 3 * 6 * 10 * 7**8) ** 2 == 1_076_746_950_455_072_400
    assert get_space("nb301").size() == get_space("darts").size()
    # SWAP: any two of the k * 8 (op, input) terms, with repetition
    per_cell = 1
    for k in (2, 3, 4, 5):
        per_cell *= (8 * k) * (8 * k + 1) // 2
    assert get_space("darts_swap").size() == per_cell**2


BAD_GENOTYPES = {
    "not a genotype": "normal=[('sep_conv_3x3', 0)]",
    "python code": "__import__('os').system('true')",
    "call of something else": DARTS_V2.replace("Genotype(", "dict(", 1),
    "positional fields": "Genotype([], [2, 3, 4, 5], [], [2, 3, 4, 5])",
    "seven pairs": DARTS_V2.replace("('dil_conv_3x3', 2)], normal_concat", "], normal_concat"),
    "other concat": DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"),
    "range of a name": DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(n)"),
    "non-integer input": DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', '2')"),
    "input from a later node": DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),
    "unknown op": DARTS_V2.replace("dil_conv_3x3", "conv_7x1_1x7"),
    "none op": DARTS_V2.replace("dil_conv_3x3", "none"),
    "same input twice": DARTS_V2.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1)",
                                         "('sep_conv_3x3', 0), ('sep_conv_3x3', 0)", 1),
    "unbalanced": DARTS_V2[:-1],
    "empty": "",
}


@pytest.mark.parametrize("case", list(BAD_GENOTYPES))
def test_bad_genotypes_raise_one_line_errors(case: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        get_space("darts").parse(BAD_GENOTYPES[case])
    assert "\n" not in str(err.value)


def test_error_messages_name_the_fix() -> None:
    darts = get_space("darts")
    with pytest.raises(InvalidArchError, match="distinct inputs.*darts_swap"):
        darts.parse(BAD_GENOTYPES["same input twice"])
    with pytest.raises(InvalidArchError, match="darts_swap"):
        darts.parse(BAD_GENOTYPES["none op"])
    with pytest.raises(InvalidArchError, match="node 5 reads an input 0..4"):
        darts.parse(BAD_GENOTYPES["input from a later node"])
    with pytest.raises(InvalidArchError, match="range\\(2, 6\\)"):
        darts.parse(BAD_GENOTYPES["other concat"])
    with pytest.raises(InvalidArchError, match="must be a string"):
        darts.parse(42)  # type: ignore[arg-type]
    arch = darts.parse(DARTS_V2)
    with pytest.raises(InvalidArchError, match="missing \\['normal_node2_in0'\\]"):
        darts.key({k: v for k, v in arch.items() if k != "normal_node2_in0"})
    with pytest.raises(InvalidArchError, match="unexpected \\['extra'\\]"):
        darts.key({**arch, "extra": 1})
    with pytest.raises(InvalidArchError):
        darts.build({**arch, "normal_node2_op0": "conv"})
    # darts_swap accepts both
    swap = get_space("darts_swap")
    swap.parse(BAD_GENOTYPES["same input twice"])
    swap.parse(BAD_GENOTYPES["none op"])


def test_encoding_and_validity_flags() -> None:
    darts, swap = get_space("darts"), get_space("darts_swap")
    assert len(darts.distributions) == 32
    assert darts.distributions["reduce_node5_in1"].choices == (0, 1, 2, 3, 4)
    assert darts.distributions["normal_node2_op0"].choices == (
        "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
        "dil_conv_3x3", "dil_conv_5x5")
    assert swap.distributions["normal_node2_op0"].choices[0] == "none"
    assert not darts.all_valid and swap.all_valid
    assert darts.cache_name == "darts"
    assert get_space("nb301").cache_name == "nb301"
    assert get_space("nb301", variant="naslib").cache_name == 'nb301{"variant": "naslib"}'
    assert DartsSpace(channels=16, layers=8).cache_name == 'darts{"channels": 16, "layers": 8}'
    with pytest.raises(InvalidArchError, match="variant"):
        DartsSpace(variant="nasbench")


def test_sample_mutate_neighbours_are_valid() -> None:
    space = get_space("darts")
    a = [space.key(x) for x in space.sample(30, seed=1)]
    assert a == [space.key(x) for x in space.sample(30, seed=1)]
    assert a != [space.key(x) for x in space.sample(30, seed=2)]
    assert len(set(a)) == 30
    arch = space.parse(DARTS_V2)
    rng = np.random.default_rng(0)
    for _ in range(30):
        child = space.mutate(arch, rng)
        assert sum(child[k] != arch[k] for k in arch) == 1
        space.key(child)
    neighbours = space.neighbours(arch)
    assert all(space.is_valid(n) for n in neighbours)
    assert len({space.key(n) for n in neighbours}) == len(neighbours)
    swap = get_space("darts_swap")
    assert all(swap.is_valid(x) for x in swap.sample(20, seed=0))


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in net.named_parameters() if "auxiliary" not in name)


def test_darts_v2_has_the_official_parameter_count() -> None:
    space = get_space("darts")
    net = space.build(space.parse(DARTS_V2))
    assert n_params(net) == DARTS_V2_PARAMS
    with_aux = DartsSpace(auxiliary=True).build(space.parse(DARTS_V2))
    assert n_params(with_aux) == DARTS_V2_PARAMS
    assert sum(p.numel() for p in with_aux.parameters()) > DARTS_V2_PARAMS


def _naslib_param_check(rows: list[dict[str, str]]) -> None:
    naslib = get_space("nb301", variant="naslib")
    darts = get_space("nb301")
    for row in rows:
        arch = naslib.parse(row["genotype"])
        expected = round(float(row["params"]) * 1e6)
        assert n_params(naslib.build(arch)) == expected, row["genotype"]
        # the DARTS network adds the affine BN parameters of the cell ops
        assert n_params(darts.build(arch)) > expected


def test_nb301_params_equal_naslib_on_a_sample(nb301: list[dict[str, str]]) -> None:
    rng = np.random.default_rng(0)
    _naslib_param_check([nb301[int(i)] for i in rng.choice(len(nb301), 12, replace=False)])


@pytest.mark.slow
def test_nb301_params_equal_naslib_on_every_row(nb301: list[dict[str, str]]) -> None:
    _naslib_param_check(nb301)


def test_network_shapes_on_a_small_instance(yang: list[dict[str, str]],
                                            swap: list[dict[str, str]]) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    small = DartsSpace(channels=8, layers=5, auxiliary=True)
    net = small.build(small.parse(yang[0]["genotype"]), num_classes=7)
    assert net(x).shape == (2, 7)
    assert net.logits_aux is not None and net.logits_aux.shape == (2, 7)
    net.eval()
    assert net(x).shape == (2, 7) and net.logits_aux is None
    # reductions halve the resolution at cells layers//3 and 2*layers//3
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for c in net.cells]
    net(x)
    for h in hooks:
        h.remove()
    assert sizes == [32, 16, 16, 8, 8]
    # drop path is off at init: a training-mode forward is deterministic given the BN statistics
    net.train()
    assert net.drop_path_prob == 0.0
    swap_space = get_space("darts_swap", channels=8, layers=5)
    none_net = swap_space.build(swap_space.parse(swap[0]["genotype"]))
    assert none_net(x).shape == (2, 10)


def test_drop_path_changes_training_outputs_only_when_set(yang: list[dict[str, str]]) -> None:
    small = DartsSpace(channels=8, layers=3)
    net = small.build(small.parse(yang[1]["genotype"]))
    x = torch.randn(4, 3, 32, 32)
    net.train()
    assert torch.equal(net(x), net(x))
    net.drop_path_prob = 0.5
    torch.manual_seed(1)
    a = net(x)
    torch.manual_seed(2)
    assert not torch.equal(a, net(x))


def test_naslib_variant_adds_bn_after_pooling(yang: list[dict[str, str]]) -> None:
    small = DartsSpace(channels=8, layers=3, variant="naslib")
    net = small.build(small.parse(DARTS_V2))
    bns = [m for m in net.cells[1].ops.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.affine for m in bns)
    pools = [m for m in net.cells[1].ops if isinstance(m, torch.nn.Sequential)
             and isinstance(m[0], torch.nn.MaxPool2d)]
    assert pools and all(isinstance(m[1], torch.nn.BatchNorm2d) for m in pools)
