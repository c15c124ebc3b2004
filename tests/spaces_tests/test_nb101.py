"""The NB101 space: validity, the module hash against official keys, the network against the
official parameter counts, spec strings and bare-hash parsing."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from zcnas.exceptions import InvalidArchError
from zcnas.spaces import NB101Space
from zcnas.spaces import _nb101
from zcnas.spaces import get_space
from zcnas.spaces._nb101 import graph_hash
from zcnas.spaces._nb101 import vertex_channels


# NASLib's NB101 encoding (naslib_tuple column): 49 matrix bits then 7 op codes
NASLIB_OPS = {0: "input", 1: "output", 2: "maxpool3x3", 3: "conv1x1-bn-relu", 4: "conv3x3-bn-relu"}
C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


@pytest.fixture(scope="module")
def space() -> NB101Space:
    return get_space("nb101")


def _spec(row: dict[str, str]) -> str:
    return f"matrix={row['pruned_adjacency']};ops={row['pruned_ops']}"


@pytest.fixture(scope="module")
def fixture_cells(shared_data: Path) -> dict[str, dict[str, str]]:
    """One row per cell of the 30 official NB101 records."""
    with (shared_data / "nb101" / "nb101_api_fixture_records.csv").open(newline="") as f:
        return {row["nb101_hash"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def subset_rows(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / "nb101" / "nb101_zc_proxies_naslib_subset.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_size_distributions_and_validity_flag(space: NB101Space) -> None:
    assert space.size() == 423_624
    assert space.all_valid is False
    dists = space.distributions
    assert len(dists) == 21 + 5
    assert [n for n in dists if n.startswith("edge_")][:7] == [
        "edge_0_1", "edge_0_2", "edge_0_3", "edge_0_4", "edge_0_5", "edge_0_6", "edge_1_2"]
    assert dists["edge_5_6"].choices == (0, 1)
    assert dists["op_5"].choices == (C3, C1, MP)
    assert space.encodings() == 2**21 * 3**5


def test_hash_reproduces_the_30_official_keys(space: NB101Space,
                                              fixture_cells: dict[str, dict[str, str]]) -> None:
    assert len(fixture_cells) == 30
    for h, row in fixture_cells.items():
        assert space.key(space.parse(_spec(row))) == h


def test_hash_of_a_cell_printed_by_the_nb101_api() -> None:
    """kcyu2014/nas-landmarkreg nasws/cnn/search_space/nasbench101/test-nasbench-partial.ipynb
    prints this spec for ``hash_to_model_spec('97a390a2cb02fdfbc505f6ac44a37228')``."""
    matrix = [[0, 1, 0, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1],
              [0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1],
              [0, 0, 0, 0, 0, 0, 0]]
    ops = ["input", C3, MP, MP, MP, MP, "output"]
    space = NB101Space()
    assert space.key(space.encode(matrix, ops)) == "97a390a2cb02fdfbc505f6ac44a37228"


def test_hash_of_every_subset_row_pruned_and_unpruned(space: NB101Space,
                                                      subset_rows: list[dict[str, str]]) -> None:
    """Both the pruned cell and NASLib's unpruned 7x7 encoding of each row give its hash."""
    assert len(subset_rows) == 500
    for row in subset_rows:
        assert space.key(space.parse(_spec(row))) == row["nb101_hash"]
        codes = [int(x) for x in row["naslib_tuple"].split("-")]
        matrix = [codes[7 * i:7 * i + 7] for i in range(7)]
        ops = [NASLIB_OPS[c] for c in codes[49:]]
        assert space.key(space.encode(matrix, ops)) == row["nb101_hash"], row["naslib_tuple"]
    assert len({r["nb101_hash"] for r in subset_rows}) == 292


def test_graph_hash_is_isomorphism_invariant_and_tells_apart() -> None:
    # the same diamond with its two branches swapped
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert graph_hash(diamond, [-1, 1, 2, -2]) == graph_hash(diamond, [-1, 2, 1, -2])
    # a chain 1 -> 2 -> 3 -> 4 differs from its reverse labelling (direction matters)
    chain = [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0] * 5]
    assert graph_hash(chain, [-1, 1, 0, 0, -2]) != graph_hash(chain, [-1, 0, 0, 1, -2])
    # random relabelled permutations of random graphs keep their hash
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(3, 9))
        m = rng.integers(0, 2, (n, n))
        labels = [int(x) for x in rng.integers(0, 4, n)]
        perm = rng.permutation(n)  # new vertex perm[v] is old vertex v
        pm = np.zeros_like(m)
        pl = [0] * n
        for v in range(n):
            pl[perm[v]] = labels[v]
            for w in range(n):
                pm[perm[v], perm[w]] = m[v, w]
        assert graph_hash(m.tolist(), labels) == graph_hash(pm.tolist(), pl)


def test_isomorphic_vertex_orders_share_a_key(space: NB101Space) -> None:
    # the same cell with the two parallel branches written in the other order
    b_matrix = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0] * 5]
    b = space.encode(b_matrix, ["input", MP, C3, C1, "output"])
    a_matrix = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    a = space.encode(a_matrix, ["input", C3, MP, C1, "output"])
    assert space.key(a) == space.key(b)
    c = space.encode(a_matrix, ["input", C3, MP, C3, "output"])
    assert space.key(c) != space.key(a)


def test_vertex_channels_follow_model_builder() -> None:
    """Cases of nasbench/tests/model_builder_test.py (google-research/nasbench)."""
    branch = ((0, 1, 1, 0), (0, 0, 0, 1), (0, 0, 0, 1), (0, 0, 0, 0))
    assert vertex_channels(8, 8, branch) == [8, 4, 4, 8]
    assert vertex_channels(8, 15, branch) == [8, 8, 7, 15]
    three = ((0, 1, 1, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0,) * 5)
    assert vertex_channels(8, 8, three) == [8, 3, 3, 2, 8]
    fan = ((0, 1, 0, 0, 0), (0, 0, 1, 1, 0), (0, 0, 0, 0, 1), (0, 0, 0, 0, 1), (0,) * 5)
    assert vertex_channels(8, 9, fan) == [8, 5, 5, 4, 9]
    chain = ((0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1), (0, 0, 0, 0))
    assert vertex_channels(16, 8, chain) == [16, 8, 8, 8]
    assert vertex_channels(1, 5, ((0, 1), (0, 0))) == [1, 5]


def test_params_equal_the_30_official_trainable_parameters(
        space: NB101Space, fixture_cells: dict[str, dict[str, str]]) -> None:
    for h, row in fixture_cells.items():
        with torch.device("meta"):  # shapes only: skips the (slow) weight initialisation
            net = space.build(space.parse(h))
        assert sum(p.numel() for p in net.parameters()) == int(row["trainable_parameters"]), h


def test_network_matches_nb101_ops(space: NB101Space) -> None:
    chain = "01000" "00100" "00010" "00001" "00000"
    net = space.build(space.parse(f"matrix={chain};ops=input,{C3},{MP},{C1},output"))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(b.momentum == pytest.approx(0.003) and b.eps == 1e-5 for b in bns)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    assert net.stem[0].out_channels == 128
    assert net.classifier.in_features == 512 and net.classifier.bias is not None
    pools = [m for m in net.cells if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 2 and len(net.cells) == 11


def test_forward_with_uneven_channel_split_and_truncation() -> None:
    """Three vertices feed the output (128 = 43 + 43 + 42); 1 -> 3 and 2 -> 3 must cut 43
    channels to 42; the input also feeds the output (projection added)."""
    space = NB101Space(stem_channels=128, num_stacks=1, modules_per_stack=1)
    matrix = [[0, 1, 1, 0, 1], [0, 0, 0, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0] * 5]
    arch = space.encode(matrix, ["input", C3, C1, MP, "output"])
    net = space.build(arch, num_classes=5)
    cell = net.cells[0]
    assert cell.channels == [128, 43, 43, 42, 128]
    out = net(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 5)


def test_input_to_output_only_cell_is_a_projection() -> None:
    space = NB101Space(stem_channels=16, modules_per_stack=1)
    arch = space.parse("matrix=0100;ops=input,output")
    net = space.build(arch, num_classes=3)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    # stem conv + BN, three projections (conv + BN each), dense
    expected = 3 * 9 * 16 + 32 + (16 * 16 + 32) + (16 * 32 + 64) + (32 * 64 + 128) + 64 * 3 + 3
    assert sum(p.numel() for p in net.parameters()) == expected


def test_invalid_cells_say_why(space: NB101Space) -> None:
    disconnected = space.encode([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"])
    with pytest.raises(InvalidArchError, match="disconnected"):
        space.key(disconnected)
    dense = {name: 1 for name in _nb101.EDGE_NAMES} | {n: C3 for n in _nb101.OP_NAMES}
    with pytest.raises(InvalidArchError, match="21 edges after pruning; .* at most 9"):
        space.key(dense)
    with pytest.raises(InvalidArchError, match="disconnected"):
        space.parse("matrix=000000000;ops=input,conv3x3-bn-relu,output")
    assert not space.is_valid(dense)


def test_pruning_removes_dangling_vertices(space: NB101Space) -> None:
    # vertex 2 hangs off vertex 1 and reaches nothing: the cell is input -> 1 -> output
    arch = space.encode([[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
                        ["input", C3, MP, "output"])
    assert space.spec(arch) == "matrix=010001000;ops=input,conv3x3-bn-relu,output"
    assert space.key(arch) == space.key(space.parse("matrix=010001000;ops=input,conv3x3-bn-relu,output"))


MALFORMED = {
    "no fields": "conv3x3",
    "missing ops": "matrix=0100",
    "extra field": "matrix=0100;ops=input,output;x=1",
    "matrix length": "matrix=010;ops=input,output",
    "non-binary": "matrix=0200;ops=input,output",
    "first op": "matrix=0100;ops=conv3x3-bn-relu,output",
    "last op": "matrix=0100;ops=input,maxpool3x3",
    "unknown op": "matrix=010001000;ops=input,conv5x5,output",
    "lower triangle": "matrix=010101000;ops=input,conv3x3-bn-relu,output",
    "self loop": "matrix=011011000;ops=input,conv3x3-bn-relu,output",
    "eight vertices": "matrix=" + "0" * 64 + ";ops=input," + ",".join([C3] * 6) + ",output",
    "one vertex": "matrix=0;ops=input",
    "empty": "",
    "short hex": "97a390a2",
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_specs_raise_one_line_errors(space: NB101Space, case: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.parse(MALFORMED[case])
    assert "\n" not in str(err.value) and "NB101" in str(err.value)


def test_bad_dicts(space: NB101Space) -> None:
    arch = space.sample(1, seed=0)[0]
    with pytest.raises(InvalidArchError, match="missing \\['op_5'\\]"):
        space.key({k: v for k, v in arch.items() if k != "op_5"})
    with pytest.raises(InvalidArchError, match="edge_0_1 must be 0 or 1"):
        space.key({**arch, "edge_0_1": 2})
    with pytest.raises(InvalidArchError, match="unknown NB101 op 'conv' on op_1"):
        space.key({**arch, "op_1": "conv"})
    with pytest.raises(InvalidArchError, match="must be a string"):
        space.parse(7)  # type: ignore[arg-type]


def test_spec_round_trip_and_bare_hash_after_keying(space: NB101Space) -> None:
    for arch in space.sample(20, seed=5):
        key = space.key(arch)
        again = space.parse(space.spec(arch))
        assert space.key(again) == key
        assert space.spec(again) == space.spec(arch)
        # any NB101Space in this process can now parse the bare hash
        assert NB101Space().key(NB101Space().parse(key)) == key


def test_unknown_hash_names_the_fixes(space: NB101Space, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    monkeypatch.setattr(_nb101, "_KNOWN", {})
    monkeypatch.setenv("ZCNAS_DATA", str(tmp_path))  # the space never reads benchmark files
    with pytest.raises(InvalidArchError,
                       match=r"spec string 'matrix=\.\.\.;ops=\.\.\.'.*get_benchmark\('nb101'\)"):
        space.parse("0123456789abcdef0123456789abcdef")


def test_bare_hash_of_a_benchmark_cell_is_known_once_the_benchmark_is_loaded(
        space: NB101Space, subset_rows: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch,
        shared_data: Path) -> None:
    """A hash cannot be inverted (the space sits below the benchmarks and reads no tables);
    loading the nb101 benchmark's tables remembers every cell's spec."""
    from zcnas.benchmarks import _nb101 as bm
    from zcnas.benchmarks import get_benchmark

    monkeypatch.setattr(_nb101, "_KNOWN", {})
    monkeypatch.setattr(bm, "_load", bm._load.__wrapped__)  # no cached tables either
    h = subset_rows[0]["nb101_hash"]
    with pytest.raises(InvalidArchError, match="is not known to this process"):
        space.parse(h)
    benchmark = get_benchmark("nb101")
    assert space.key(space.parse(benchmark.encoding(h))) == h
    assert space.key(space.parse(h)) == h
    assert space.spec(space.parse(h)) == space.spec(space.parse(_spec(subset_rows[0])))


def test_sample_is_seeded_unique_and_valid(space: NB101Space) -> None:
    a = space.sample(50, seed=1)
    assert a == space.sample(50, seed=1)
    keys = [space.key(x) for x in a]
    assert len(set(keys)) == 50
    assert keys != [space.key(x) for x in space.sample(50, seed=2)]


def test_mutate_and_neighbours_stay_valid(space: NB101Space) -> None:
    arch = space.sample(1, seed=3)[0]
    neighbours = space.neighbours(arch)
    assert neighbours and len(neighbours) <= 21 + 5 * 2
    for nb in neighbours:
        space.key(nb)
        assert sum(nb[k] != arch[k] for k in arch) == 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        child = space.mutate(arch, rng)
        assert child in neighbours


def test_small_instance_keys_alike_and_has_its_own_cache_name() -> None:
    full, small = NB101Space(), NB101Space(stem_channels=16, modules_per_stack=1)
    arch = full.sample(1, seed=0)[0]
    assert full.key(arch) == small.key(arch)
    assert full.cache_name == "nb101"
    assert small.cache_name == 'nb101{"modules_per_stack": 1, "stem_channels": 16}'
