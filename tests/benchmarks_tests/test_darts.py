"""The DARTS-space benchmarks: darts_yang214, darts_swap1000 and nb301 (surrogate)."""

from __future__ import annotations

from collections import defaultdict
import csv
from pathlib import Path

import numpy as np
import pytest

from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import DataError
from zcnas.spaces import get_space


def _rows(shared: Path, name: str) -> list[dict[str, str]]:
    with (shared / name).open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def yang_rows(shared_data: Path) -> list[dict[str, str]]:
    return _rows(shared_data, "darts/darts_random214_yang2020.csv")


@pytest.fixture(scope="module")
def nb301_rows(shared_data: Path) -> list[dict[str, str]]:
    return _rows(shared_data, "nb301/nb301_zc_proxies_naslib_subset.csv")


@pytest.mark.parametrize("name, space, n", [("darts_yang214", "darts", 214),
                                            ("darts_swap1000", "darts_swap", 1000),
                                            ("nb301", "nb301", 1218)])
def test_keys_are_canonical_keys_of_the_space(shared_data: Path, name: str, space: str,
                                              n: int) -> None:
    bench = get_benchmark(name)
    assert bench.space == space
    keys = bench.keys("cifar10")
    assert len(keys) == len(set(keys)) == n
    s = get_space(bench.space)
    assert all(s.key(s.parse(k)) == k for k in keys)
    assert bench.keys() == keys  # fixed order
    assert bench.datasets == ("cifar10",)
    bench.validate(keys[0], "cifar10", bench.metrics[0])


def test_yang214_metrics_follow_the_curves(yang_rows: list[dict[str, str]]) -> None:
    bench = get_benchmark("darts_yang214")
    assert bench.metrics == ("final", "max", "mean_last10")
    for row in yang_rows:
        raw = row["genotype"]  # the file's nested form: query canonicalises it
        curve = bench.curve(raw)
        assert curve.shape == (600,)
        final = bench.query(raw, "cifar10", "final")
        assert final == float(row["acc_final_ep600"])
        assert final == pytest.approx(curve[-1], abs=5e-3)
        assert bench.query(raw, metric="max") == pytest.approx(curve.max(), abs=5e-3)
        assert bench.query(raw, metric="mean_last10") == pytest.approx(curve[-10:].mean(), abs=5e-3)
        assert bench.query(raw, metric="max") >= final
    values = [bench.query(k) for k in bench.keys()]
    assert 96.0 < min(values) and max(values) < 97.7  # the DARTS 600-epoch regime


def test_swap1000_values_and_space(shared_data: Path) -> None:
    bench = get_benchmark("darts_swap1000")
    rows = _rows(shared_data, "darts/darts_random1000_swap.csv")
    space = get_space("darts_swap")
    for row in rows[:100]:
        assert bench.query(row["genotype"]) == float(row["cifar10_val_acc"])
    for key in bench.keys():
        arch = space.parse(key)
        normal = [arch[n] for n in arch if n.startswith("normal")]
        reduce = [arch[n] for n in arch if n.startswith("reduce")]
        assert normal == reduce  # the SWAP sample ties the two cells
    with pytest.raises(DataError, match="unknown darts_swap1000 metric 'test'; choose valid"):
        bench.query(bench.keys()[0], "cifar10", "test")


def test_nb301_aggregates_the_two_runs(nb301_rows: list[dict[str, str]]) -> None:
    bench = get_benchmark("nb301")
    space = get_space("nb301")
    by_key: dict[str, dict[str, float]] = defaultdict(dict)
    for row in nb301_rows:
        by_key[space.key(space.parse(row["genotype"]))][row["run"]] = float(row["nbsz_val_accuracy"])
    both = [k for k, v in by_key.items() if len(v) == 2]
    assert len(both) == 7
    for key in both:
        runs = by_key[key]
        assert bench.query(key) == pytest.approx(np.mean(list(runs.values())))
        for run, value in runs.items():
            assert get_benchmark("nb301", run=run).query(key) == pytest.approx(value)
    for run, n in (("naslib_2022-05-18_725", 725), ("naslib_2022-05-14_500", 500)):
        one = get_benchmark("nb301", run=run)
        assert len(one.keys()) == n
        only_other = next(k for k, v in by_key.items() if run not in v)
        with pytest.raises(DataError, match=f"run {run}"):
            one.query(only_other)
    with pytest.raises(DataError, match="naslib_2022-05-18_725"):
        get_benchmark("nb301", run="latest")
    with pytest.raises(DataError, match="surrogate_valid"):
        bench.query(both[0], "cifar10", "test")
    assert "surrogate" in bench.dataset("cifar10").description


def test_nb301_reference_scores(nb301_rows: list[dict[str, str]]) -> None:
    bench = get_benchmark("nb301")
    space = get_space("nb301")
    scores = bench.reference_scores("cifar10")
    assert set(scores) == {"flops", "params", "epe_nas", "fisher", "grad_norm", "grasp", "jacov",
                           "l2_norm", "nwot", "plain", "snip", "synflow"}
    assert len(scores["synflow"]) == 1218
    assert len(scores["nwot"]) == 725  # only the 2022-05-18 run has nwot
    for row in nb301_rows[:50]:
        key = space.key(space.parse(row["genotype"]))
        assert scores["params"][key] == pytest.approx(float(row["params"]))
    # jacov is NASLib's negative log-determinant form
    assert max(scores["jacov"].values()) < 0


def test_errors_name_the_fix(tmp_path: Path) -> None:
    bench = get_benchmark("darts_yang214")
    key = bench.keys()[0]
    with pytest.raises(DataError, match="choose final, max, mean_last10"):
        bench.query(key, "cifar10", "test")
    with pytest.raises(DataError, match="choose cifar10"):
        bench.query(key, "cifar100", "final")
    other = get_space("darts").key(get_space("darts").sample(1, seed=5)[0])
    with pytest.raises(DataError, match="keys\\(\\)"):
        bench.query(other)
    with pytest.raises(DataError, match="malformed DARTS genotype"):
        bench.query("not a genotype")
    missing = get_benchmark("darts_yang214", path=str(tmp_path / "none.csv"))
    with pytest.raises(DataError, match="ZCNAS_DATA"):
        missing.keys()
    bad = tmp_path / "bad.csv"
    bad.write_text("genotype,acc\nx,1\n")
    with pytest.raises(DataError, match="acc_final_ep600"):
        get_benchmark("darts_yang214", path=str(bad)).keys()
    with pytest.raises(DataError, match="ZCNAS_DATA"):
        get_benchmark("nb301", path=str(tmp_path / "none.csv")).keys()
