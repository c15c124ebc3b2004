"""The NATS-Bench size space: keys, NATS index order, and the network against the official
parameter and FLOP counts of the three fixture architectures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from zcnas.exceptions import InvalidArchError
from zcnas.spaces import NATSSizeSpace
from zcnas.spaces import get_space
from zcnas.spaces._nats_sss import xautodl_flops


# NATS setting -> classifier width and input size
SETTINGS = {"cifar10": (10, (3, 32, 32)), "cifar10-valid": (10, (3, 32, 32)),
            "cifar100": (100, (3, 32, 32)), "ImageNet16-120": (120, (3, 16, 16))}


@pytest.fixture(scope="module")
def space() -> NATSSizeSpace:
    return get_space("nats_sss")


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[dict[str, str]]:
    """One official record per (sss arch, setting)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    with (shared_data / "nats_sss" / "nats_api_fixture_records.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["space"] == "sss":
                out.setdefault((row["arch_str"], row["dataset"]), row)
    return list(out.values())


def test_size_and_distributions(space: NATSSizeSpace) -> None:
    assert space.size() == 32768 == 8**5
    assert list(space.distributions) == [f"channels_{i}" for i in range(5)]
    assert space.distributions["channels_3"].choices == (8, 16, 24, 32, 40, 48, 56, 64)


def test_arch_at_is_the_nats_index(space: NATSSizeSpace, records: list[dict[str, str]]) -> None:
    """NATS-Bench's meta_archs run 8:8:8:8:8, 8:8:8:8:16, ... (the last width fastest)."""
    assert {(int(r["index"]), r["arch_str"]) for r in records} == {
        (0, "8:8:8:8:8"), (11, "8:8:8:16:32"), (284, "8:8:40:32:40")}
    for r in records:
        assert space.key(space.arch_at(int(r["index"]))) == r["arch_str"]
        assert space.index_of(space.parse(r["arch_str"])) == int(r["index"])
    assert space.key(space.arch_at(1)) == "8:8:8:8:16"
    assert space.key(space.arch_at(32767)) == "64:64:64:64:64"


def test_params_and_flops_equal_the_official_records(space: NATSSizeSpace,
                                                     records: list[dict[str, str]]) -> None:
    assert len(records) == 12  # 3 archs x 4 settings
    for r in records:
        classes, size = SETTINGS[r["dataset"]]
        net = space.build(space.parse(r["arch_str"]), num_classes=classes)
        params = sum(p.numel() for p in net.parameters())
        assert params == round(float(r["params_m"]) * 1e6), (r["arch_str"], r["dataset"])
        assert xautodl_flops(net, size) == pytest.approx(float(r["flops_m"]), abs=1e-6), \
            (r["arch_str"], r["dataset"])


def test_network_structure(space: NATSSizeSpace) -> None:
    net = space.build(space.parse("8:16:24:32:40"), num_classes=100)
    assert net.stem[0].out_channels == 8
    cell = net.cells[2]  # 16 -> 24: the skip from node 0 becomes a 1x1 conv + BN
    skip = cell.layers[3]
    assert isinstance(skip[0], torch.nn.Conv2d) and skip[0].kernel_size == (1, 1)
    assert (skip[0].in_channels, skip[0].out_channels) == (16, 24)
    assert isinstance(net.cells[0].layers[3], torch.nn.Identity)  # 8 -> 8: a plain skip
    assert net.classifier.in_features == 40
    for shape in ((2, 3, 32, 32), (2, 3, 16, 16)):
        assert net(torch.randn(*shape)).shape == (2, 100)


@pytest.mark.parametrize("bad", ["8:16:24:32", "8:16:24:32:40:48", "8:16:24:32:12", "8,16,24,32,40",
                                 "a:b:c:d:e", "", "8:16:24:32:40:"])
def test_malformed_keys(space: NATSSizeSpace, bad: str) -> None:
    with pytest.raises(InvalidArchError) as err:
        space.parse(bad)
    assert "NATS sss" in str(err.value) and "\n" not in str(err.value)


def test_bad_dicts(space: NATSSizeSpace) -> None:
    arch = space.parse("8:16:24:32:40")
    assert arch == {"channels_0": 8, "channels_1": 16, "channels_2": 24, "channels_3": 32,
                    "channels_4": 40}
    with pytest.raises(InvalidArchError, match="missing \\['channels_4'\\]"):
        space.key({k: v for k, v in arch.items() if k != "channels_4"})
    with pytest.raises(InvalidArchError, match="channels_0 must be one of"):
        space.key({**arch, "channels_0": 9})
    with pytest.raises(InvalidArchError, match="must be a string"):
        space.parse(8)  # type: ignore[arg-type]


def test_sample_neighbours(space: NATSSizeSpace) -> None:
    keys = [space.key(a) for a in space.sample(100, seed=0)]
    assert keys == [space.key(a) for a in space.sample(100, seed=0)] and len(set(keys)) == 100
    assert len(space.neighbours(space.parse("8:16:24:32:40"))) == 5 * 7
