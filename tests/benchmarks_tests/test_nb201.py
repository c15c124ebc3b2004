"""The ``nb201`` benchmark: ground truth from the shared NAS-Bench-201 CSV tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from zcnas.benchmarks import NB201Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import DataError


BEST_C10 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "nor_conv_1x1~2|")
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
DISCONNECTED = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def bench(shared_data: Path) -> NB201Benchmark:
    return get_benchmark("nb201")


def test_best_cifar10_cell(bench: NB201Benchmark) -> None:
    keys = bench.keys()
    assert len(keys) == 15625
    best = max(keys, key=lambda k: bench.query(k, "cifar10", "test"))
    assert best == BEST_C10
    assert bench.index(best) == 6111
    assert bench.query(best) == pytest.approx(94.37, abs=0.01)


def test_resnet_cell(bench: NB201Benchmark) -> None:
    assert bench.index(RESNET) == 11472
    assert bench.query(RESNET, "cifar10", "test") == pytest.approx(93.91, abs=0.01)
    assert bench.query(RESNET, "cifar100", "test") == pytest.approx(70.89, abs=0.01)
    assert bench.query(RESNET, "imagenet16", "test") == pytest.approx(44.23, abs=0.01)


def test_disconnected_cell_is_at_chance(bench: NB201Benchmark) -> None:
    assert bench.query(DISCONNECTED, "cifar10") == pytest.approx(10.0)
    assert bench.query(DISCONNECTED, "cifar100") == pytest.approx(1.0)


def test_low_fidelity_metrics_are_below_200_epochs(bench: NB201Benchmark) -> None:
    for key in (BEST_C10, RESNET):
        v12 = bench.query(key, "cifar10", "valid_12ep")
        t12 = bench.query(key, "cifar10", "test_12ep")
        assert 50.0 < v12 < bench.query(key, "cifar10", "test")
        assert 50.0 < t12 < bench.query(key, "cifar10", "test")
        assert bench.query(key, "cifar100", "valid_12ep") < bench.query(key, "cifar100", "test")


def test_any_column_by_name(bench: NB201Benchmark) -> None:
    assert bench.query(BEST_C10, metric="column:params_mb") == pytest.approx(1.073466)


def test_no_simulated_training_time(bench: NB201Benchmark) -> None:
    assert bench.train_seconds(BEST_C10) is None  # the CSV has none; use the nats benchmark


def test_unknown_dataset_metric_arch(bench: NB201Benchmark) -> None:
    with pytest.raises(DataError, match="unknown nb201 dataset 'svhn'; choose cifar10"):
        bench.query(BEST_C10, "svhn")
    with pytest.raises(DataError, match="unknown NB201 metric 'loss'; choose test"):
        bench.query(BEST_C10, "cifar10", "loss")
    with pytest.raises(DataError, match="not in the NB201 table"):
        bench.query("|nor_conv_3x3~0|+|none~0|", "cifar10")
    with pytest.raises(DataError, match="no column 'nope'"):
        bench.query(BEST_C10, metric="column:nope")


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found.*ZCNAS_DATA") as err:
        NB201Benchmark(path=str(tmp_path / "missing.csv")).query(BEST_C10)
    assert "\n" not in str(err.value)


def test_missing_default_file_names_zcnas_data(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZCNAS_DATA", str(tmp_path))
    with pytest.raises(DataError, match="ZCNAS_DATA"):
        NB201Benchmark().query(BEST_C10)


def test_custom_csv_via_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(f"index,arch,cifar10_test,cifar100_test\n0,{RESNET},91.5,66.25\n"
                    f"1,{BEST_C10},92.0,67.0\n")
    bench = NB201Benchmark(path=str(path))
    assert bench.keys() == [RESNET, BEST_C10]
    assert bench.keys("cifar100") == [RESNET, BEST_C10]  # the base class's keys(dataset) contract
    assert bench.keys("imagenet16") == []  # no such column in this table
    with pytest.raises(DataError, match="unknown nb201 dataset"):
        bench.keys("mnist")
    assert bench.query(RESNET) == 91.5
    assert bench.query(RESNET, "cifar100") == 66.25
    assert bench.index(BEST_C10) == 1
    with pytest.raises(DataError, match="no column 'imagenet16_test'"):
        bench.query(RESNET, "imagenet16")


def test_csv_without_arch_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("index,cifar10_test\n0,91.5\n")
    with pytest.raises(DataError, match="needs an 'arch' column"):
        NB201Benchmark(path=str(path)).query(RESNET)
