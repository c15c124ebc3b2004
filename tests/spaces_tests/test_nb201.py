"""The NB201 search space: keys, parsing, the network, sampling and neighbours."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from zcnas.exceptions import InvalidArchError
from zcnas.spaces import NB201Space
from zcnas.spaces import get_space


BEST_C10 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "nor_conv_1x1~2|")


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return get_space("nb201")


@pytest.fixture(scope="module")
def table(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / "nb201" / "nb201_tss_accuracies.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_size_and_distributions(space: NB201Space) -> None:
    assert space.size() == 15625
    assert list(space.distributions) == [
        "edge_0_1", "edge_0_2", "edge_1_2", "edge_0_3", "edge_1_3", "edge_2_3"]
    for dist in space.distributions.values():
        assert dist.choices == (
            "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def test_round_trip_all_archs_against_the_table(space: NB201Space,
                                                table: list[dict[str, str]]) -> None:
    table_keys = [row["arch"] for row in table]
    assert len(table_keys) == 15625
    for key in table_keys:
        arch = space.parse(key)
        assert space.key(arch) == key
    assert {space.key(a) for a in space.all_archs()} == set(table_keys)


def test_arch_at_enumerates_the_space(space: NB201Space) -> None:
    assert [space.arch_at(i) for i in range(30)] == list(space.all_archs())[:30]
    assert space.arch_at(15624) == list(space.all_archs())[-1]


def test_parse_reads_edges_by_source_and_target(space: NB201Space) -> None:
    arch = space.parse(BEST_C10)
    assert arch == {
        "edge_0_1": "nor_conv_3x3", "edge_0_2": "nor_conv_3x3", "edge_1_2": "nor_conv_3x3",
        "edge_0_3": "skip_connect", "edge_1_3": "nor_conv_3x3", "edge_2_3": "nor_conv_1x1",
    }


def test_params_of_built_nets_equal_the_table(space: NB201Space,
                                              table: list[dict[str, str]]) -> None:
    rng = np.random.default_rng(0)
    rows = [table[6111]] + [table[int(i)] for i in rng.choice(len(table), 19, replace=False)]
    assert rows[0]["arch"] == BEST_C10
    for row in rows:
        net = space.build(space.parse(row["arch"]))
        n = sum(p.numel() for p in net.parameters()) / 1e6
        assert n == pytest.approx(float(row["params_mb"]), abs=1e-6), row["arch"]
    assert sum(p.numel() for p in space.build(space.parse(BEST_C10)).parameters()) == 1073466


def test_network_forward_shape(space: NB201Space) -> None:
    import torch

    net = space.build(space.parse(BEST_C10), num_classes=100)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100)


MALFORMED = {
    "wrong node separator": BEST_C10.replace("+", ","),
    "missing pipes": BEST_C10.replace("|+|", "+"),
    "wrong edge separator": BEST_C10.replace("~", "-"),
    "two nodes": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|",
    "four nodes": BEST_C10 + "+|none~0|none~1|none~2|none~3|",
    "node with too few inputs": "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|none~1|none~2|",
    "bad op": BEST_C10.replace("nor_conv_1x1", "conv_5x5"),
    "upper case op": BEST_C10.upper(),
    "bad ~index": BEST_C10.replace("skip_connect~0", "skip_connect~1"),
    "non-digit ~index": BEST_C10.replace("skip_connect~0", "skip_connect~x"),
    "empty": "",
    "newline inside": BEST_C10.replace("+", "\n+", 1),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_strings_raise_one_line_errors(space: NB201Space, case: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.parse(MALFORMED[case])
    message = str(err.value)
    assert "\n" not in message
    assert "NB201" in message


def test_non_string_key(space: NB201Space) -> None:
    with pytest.raises(InvalidArchError, match="must be a string"):
        space.parse(42)  # type: ignore[arg-type]


def test_bad_dicts(space: NB201Space) -> None:
    arch = space.parse(BEST_C10)
    with pytest.raises(InvalidArchError, match="missing \\['edge_2_3'\\]"):
        space.key({k: v for k, v in arch.items() if k != "edge_2_3"})
    with pytest.raises(InvalidArchError, match="unexpected \\['edge_9_9'\\]"):
        space.key({**arch, "edge_9_9": "none"})
    with pytest.raises(InvalidArchError, match="unknown NB201 op 'conv' on edge_0_1"):
        space.key({**arch, "edge_0_1": "conv"})
    with pytest.raises(InvalidArchError):
        space.build({**arch, "edge_0_1": "conv"})
    assert space.as_arch(BEST_C10) == arch
    assert space.as_arch(arch) == arch


def test_sample_is_seeded_and_unique(space: NB201Space) -> None:
    a = [space.key(x) for x in space.sample(200, seed=3)]
    b = [space.key(x) for x in space.sample(200, seed=3)]
    c = [space.key(x) for x in space.sample(200, seed=4)]
    assert a == b
    assert a != c
    assert len(set(a)) == 200
    everything = [space.key(x) for x in space.sample(15625, seed=0)]
    assert len(set(everything)) == 15625
    with pytest.raises(ValueError, match="15625"):
        space.sample(15626)
    repeats = space.sample(50, seed=1, unique=False)
    assert repeats == space.sample(50, seed=1, unique=False)
    for arch in repeats:
        space.key(arch)


def test_neighbours(space: NB201Space) -> None:
    arch = space.parse(BEST_C10)
    neighbours = space.neighbours(arch)
    assert len(neighbours) == 24
    assert len({space.key(n) for n in neighbours}) == 24
    for n in neighbours:
        assert sum(n[k] != arch[k] for k in arch) == 1


def test_mutate_changes_exactly_one_edge(space: NB201Space) -> None:
    arch = space.parse(BEST_C10)
    rng = np.random.default_rng(0)
    keys = set()
    for _ in range(50):
        child = space.mutate(arch, rng)
        assert sum(child[k] != arch[k] for k in arch) == 1
        keys.add(space.key(child))
    assert keys <= {space.key(n) for n in space.neighbours(arch)}
    assert len(keys) > 10
