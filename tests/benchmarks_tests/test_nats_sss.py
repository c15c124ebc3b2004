"""The nats_sss fixture benchmark: the 3 official records, seed averaging, metrics, errors."""

from __future__ import annotations

import csv
from pathlib import Path
from statistics import fmean

import pytest

from zcnas.benchmarks import NATSSizeBenchmark
from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import DataError
from zcnas.spaces import get_space


@pytest.fixture(scope="module")
def bm(shared_data: Path) -> NATSSizeBenchmark:
    return get_benchmark("nats_sss")


@pytest.fixture(scope="module")
def rows(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / "nats_sss" / "nats_api_fixture_records.csv").open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["space"] == "sss"]


def _mean(rows: list[dict[str, str]], arch: str, setting: str, hp: int, column: str) -> float:
    values = [float(r[column]) for r in rows
              if (r["arch_str"], r["dataset"], int(r["hp_epochs"])) == (arch, setting, hp)]
    assert values
    return fmean(values)


def test_keys_in_index_order(bm: NATSSizeBenchmark) -> None:
    assert bm.keys() == bm.keys("imagenet16") == ["8:8:8:8:8", "8:8:8:16:32", "8:8:40:32:40"]
    space = get_space(bm.space)
    assert [bm.index(k) for k in bm.keys()] == [0, 11, 284]
    assert [space.index_of(space.parse(bm.encoding(k))) for k in bm.keys()] == [0, 11, 284]


CASES = [  # metric, zcnas dataset, NATS setting, hp, column
    ("test", "cifar10", "cifar10", 90, "eval_ori-test_acc_final"),
    ("test", "cifar100", "cifar100", 90, "eval_x-test_acc_final"),
    ("test", "imagenet16", "ImageNet16-120", 90, "eval_x-test_acc_final"),
    ("valid", "cifar10", "cifar10-valid", 90, "eval_x-valid_acc_final"),
    ("valid", "cifar100", "cifar100", 90, "eval_x-valid_acc_final"),
    ("valid_12ep", "cifar10", "cifar10-valid", 12, "eval_x-valid_acc_final"),
    ("test_12ep", "imagenet16", "ImageNet16-120", 12, "eval_x-test_acc_final"),
    ("test_01ep", "cifar10", "cifar10", 1, "eval_ori-test_acc_final"),
    ("valid_01ep", "cifar100", "cifar100", 1, "eval_x-valid_acc_final"),
]


@pytest.mark.parametrize("metric,dataset,setting,hp,column", CASES)
def test_query_is_the_seed_mean_of_the_records(bm: NATSSizeBenchmark, rows: list[dict[str, str]],
                                               metric: str, dataset: str, setting: str, hp: int,
                                               column: str) -> None:
    for key in bm.keys():
        assert bm.query(key, dataset, metric) == pytest.approx(_mean(rows, key, setting, hp, column))


def test_trial_seed_and_train_seconds(bm: NATSSizeBenchmark, rows: list[dict[str, str]]) -> None:
    key = "8:8:8:16:32"
    seeds = [bm.query(key, "cifar10", "valid_12ep", trial_seed=s) for s in (777, 888, 999)]
    assert len(set(seeds)) > 1
    assert bm.query(key, "cifar10", "valid_12ep") == pytest.approx(fmean(seeds))
    assert bm.train_seconds(key) == pytest.approx(
        _mean(rows, key, "cifar10-valid", 12, "train_time_total_s"))
    assert bm.train_seconds(key, "cifar100", hp=90) == pytest.approx(
        _mean(rows, key, "cifar100", 90, "train_time_total_s"))
    with pytest.raises(DataError, match="has the seeds \\[777\\], not 888"):
        bm.query(key, "cifar10", "test", trial_seed=888)


def test_sizes_agree_with_the_built_networks(bm: NATSSizeBenchmark) -> None:
    space = get_space(bm.space)
    for key in bm.keys():
        for dataset, classes in (("cifar10", 10), ("cifar100", 100), ("imagenet16", 120)):
            net = space.build(space.parse(key), num_classes=classes)
            assert sum(p.numel() for p in net.parameters()) == round(bm.params_m(key, dataset) * 1e6)


def test_errors(bm: NATSSizeBenchmark, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no NATS-Bench sss fixture record; the fixture holds only"):
        bm.query("64:64:64:64:64")
    with pytest.raises(DataError, match="unknown NATS sss metric 'test_200ep'; choose test"):
        bm.query("8:8:8:8:8", metric="test_200ep")
    with pytest.raises(DataError, match="unknown nats_sss dataset"):
        bm.query("8:8:8:8:8", dataset="imagenet")
    with pytest.raises(DataError, match="set ZCNAS_DATA"):
        NATSSizeBenchmark(path=str(tmp_path / "none.csv")).keys()


def test_a_record_without_the_split(rows: list[dict[str, str]], tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            if (r["arch_str"], r["dataset"], r["hp_epochs"]) == ("8:8:8:8:8", "cifar10", "90"):
                r = {**r, "eval_ori-test_acc_final": ""}
            writer.writerow(r)
    bm = NATSSizeBenchmark(path=str(path))
    with pytest.raises(DataError, match="records no ori-test accuracy for '8:8:8:8:8' on cifar10"):
        bm.query("8:8:8:8:8", "cifar10", "test")
    assert bm.query("8:8:8:16:32", "cifar10", "test") > 0
