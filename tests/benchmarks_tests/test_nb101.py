"""The nb101 benchmark: keys, repeat aggregation, metrics, encodings, reference scores, errors."""

from __future__ import annotations

import csv
from pathlib import Path
import shutil
from statistics import fmean

import pytest

from zcnas.benchmarks import NB101Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import DataError
from zcnas.spaces import get_space


OVERLAP = "ff9713ff8e7d4d6a2ea61994a8bdd447"  # the one cell in both files (data README)


@pytest.fixture(scope="module")
def bm(shared_data: Path) -> NB101Benchmark:
    return get_benchmark("nb101")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def fixture_rows(shared_data: Path) -> list[dict[str, str]]:
    return _read(shared_data / "nb101" / "nb101_api_fixture_records.csv")


@pytest.fixture(scope="module")
def subset_rows(shared_data: Path) -> list[dict[str, str]]:
    return _read(shared_data / "nb101" / "nb101_zc_proxies_naslib_subset.csv")


def test_keys(bm: NB101Benchmark, fixture_rows: list[dict[str, str]],
              subset_rows: list[dict[str, str]]) -> None:
    fixture = {r["nb101_hash"] for r in fixture_rows}
    subset = {r["nb101_hash"] for r in subset_rows}
    assert (len(fixture), len(subset), len(fixture & subset)) == (30, 292, 1)
    assert bm.keys() == bm.keys("cifar10") == sorted(fixture | subset)
    assert len(bm.keys()) == 321
    for metric in ("test", "valid_halfway", "test_halfway"):
        assert bm.keys(metric=metric) == sorted(fixture)
    assert bm.datasets == ("cifar10",) and bm.dataset("cifar10").num_classes == 10


def test_fixture_cells_average_their_three_repeats(bm: NB101Benchmark,
                                                   fixture_rows: list[dict[str, str]]) -> None:
    columns = {"valid": "final_validation_accuracy", "test": "final_test_accuracy",
               "valid_halfway": "halfway_validation_accuracy",
               "test_halfway": "halfway_test_accuracy"}
    by_hash: dict[str, list[dict[str, str]]] = {}
    for r in fixture_rows:
        by_hash.setdefault(r["nb101_hash"], []).append(r)
    for h, runs in by_hash.items():
        assert sorted(int(r["repeat"]) for r in runs) == [0, 1, 2]
        for metric, col in columns.items():
            assert bm.query(h, "cifar10", metric) == pytest.approx(fmean(float(r[col]) for r in runs))
            for r in runs:
                assert bm.query(h, metric=metric, repeat=int(r["repeat"])) == float(r[col])
        assert bm.train_seconds(h) == pytest.approx(
            fmean(float(r["final_training_time_s"]) for r in runs))
        assert bm.train_seconds(h, halfway=True) == pytest.approx(
            fmean(float(r["halfway_training_time_s"]) for r in runs))
        assert bm.trainable_parameters(h) == int(runs[0]["trainable_parameters"])


def test_subset_cells_average_their_distinct_repeats(bm: NB101Benchmark,
                                                     subset_rows: list[dict[str, str]]) -> None:
    values: dict[str, list[float]] = {}
    for r in subset_rows:
        values.setdefault(r["nb101_hash"], []).append(float(r["nbsz_val_accuracy"]))
    repeated = [h for h, v in values.items() if len(v) > len(set(v)) and h != OVERLAP]
    assert repeated  # rows that drew the same NB101 repeat twice exist
    for h, v in values.items():
        if h == OVERLAP:
            continue
        assert bm.query(h) == pytest.approx(fmean(set(v)))
        assert bm.train_seconds(h) is None and bm.trainable_parameters(h) is None


def test_overlap_cell_uses_the_official_repeats(bm: NB101Benchmark,
                                                subset_rows: list[dict[str, str]]) -> None:
    subset_value = {float(r["nbsz_val_accuracy"]) for r in subset_rows if r["nb101_hash"] == OVERLAP}
    assert subset_value == {bm.query(OVERLAP, repeat=1)}  # the subset row is official repeat 1
    assert bm.query(OVERLAP) == pytest.approx(fmean(bm.query(OVERLAP, repeat=i) for i in range(3)))


def test_encoding_parses_back_to_the_key(bm: NB101Benchmark) -> None:
    space = get_space(bm.space)
    for key in bm.keys():
        spec = bm.encoding(key)
        assert spec.startswith("matrix=")
        assert space.key(space.as_arch(spec)) == key


def test_reference_scores_are_row_means(bm: NB101Benchmark, subset_rows: list[dict[str, str]]) -> None:
    ref = bm.reference_scores("cifar10")
    assert sorted(ref) == ["epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm",
                           "params", "plain", "snip", "synflow"]
    for proxy, scores in ref.items():
        assert len(scores) == 292
        rows = [r for r in subset_rows if r["nb101_hash"] == subset_rows[0]["nb101_hash"]]
        assert scores[rows[0]["nb101_hash"]] == pytest.approx(fmean(float(r[proxy]) for r in rows))
    ref["synflow"].clear()
    assert len(bm.reference_scores("cifar10")["synflow"]) == 292  # a copy each call


def test_errors_name_the_fix(bm: NB101Benchmark, subset_rows: list[dict[str, str]]) -> None:
    subset_only = next(r["nb101_hash"] for r in subset_rows if r["nb101_hash"] != OVERLAP)
    with pytest.raises(DataError, match="only a validation accuracy.*metric='valid'"):
        bm.query(subset_only, metric="test")
    with pytest.raises(DataError, match="does not say which repeat"):
        bm.query(subset_only, repeat=0)
    with pytest.raises(DataError, match="repeats 0..2, not 3"):
        bm.query(OVERLAP, repeat=3)
    with pytest.raises(DataError, match="not in the nb101 tables"):
        bm.query("0" * 32)
    with pytest.raises(DataError, match="unknown NB101 metric 'acc'; choose valid, test"):
        bm.query(OVERLAP, metric="acc")
    with pytest.raises(DataError, match="unknown nb101 dataset 'cifar100'; choose cifar10"):
        bm.query(OVERLAP, dataset="cifar100")
    with pytest.raises(DataError, match="not in the nb101 tables"):
        bm.encoding("0" * 32)
    bm.validate(OVERLAP, "cifar10", "test")
    with pytest.raises(DataError):
        bm.validate(subset_only, "cifar10", "test")


def test_missing_and_corrupt_files(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(DataError, match="set ZCNAS_DATA .* path=<csv>"):
        NB101Benchmark(path=str(tmp_path / "none.csv")).keys()
    subset = shared_data / "nb101" / "nb101_zc_proxies_naslib_subset.csv"
    text = subset.read_text().splitlines()
    first = text[1].split(",")
    first[0] = "0" * 32  # a hash that is not the cell's
    bad = tmp_path / "subset.csv"
    bad.write_text("\n".join([text[0], ",".join(first), *text[2:]]) + "\n")
    with pytest.raises(DataError, match="line 2: nb101_hash 0{32} is not the hash of its cell"):
        NB101Benchmark(path=str(bad)).keys()
    cols = tmp_path / "cols.csv"
    cols.write_text("nb101_hash,pruned_ops\n")
    with pytest.raises(DataError, match="lacks the columns"):
        NB101Benchmark(path=str(cols)).keys()
    copy = tmp_path / "copy.csv"
    shutil.copy(subset, copy)
    assert len(NB101Benchmark(path=str(copy)).keys()) == 321
