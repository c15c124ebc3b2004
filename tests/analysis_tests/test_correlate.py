from __future__ import annotations

import numpy as np
import pytest

from zcnas.analysis import correlate
from zcnas.analysis import rank_correlation
from zcnas.exceptions import ZcnasError
from zcnas.storage import ScoreCache


def test_rank_correlation_signs_and_intervals() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    noisy = truth + rng.normal(scale=0.5, size=200)
    up = rank_correlation(noisy, truth, n_bootstrap=200)
    assert 0.7 < up.spearman < 1.0 and 0.5 < up.kendall < 1.0
    assert up.spearman_ci[0] <= up.spearman <= up.spearman_ci[1]
    assert up.kendall_ci[0] <= up.kendall <= up.kendall_ci[1]
    down = rank_correlation(-noisy, truth, n_bootstrap=50)
    assert down.spearman == pytest.approx(-up.spearman)
    flipped = rank_correlation(-noisy, truth, n_bootstrap=50, direction="minimize")
    assert flipped.spearman == pytest.approx(up.spearman)


def test_rank_correlation_drops_nan_pairs() -> None:
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    y = np.array([1.0, 2.0, 3.0, 4.0, np.inf])
    rc = rank_correlation(x, y, n_bootstrap=10)
    assert rc.n == 3 and rc.spearman == pytest.approx(1.0)


def test_correlate_scores_caches_and_writes(tmp_path, sqlite_url) -> None:
    out = tmp_path / "out"
    kwargs = dict(proxies=["params", "flops"], n=24, datasets=["cifar10", "cifar100"],
                  storage=sqlite_url, n_bootstrap=50, out_dir=out, progress=False,
                  batch_size=8)
    first = correlate(**kwargs)
    assert len(first.arch_keys) == 24 and len(set(first.arch_keys)) == 24
    # model size is a known decent predictor of NB201 accuracy
    assert first.row("params", "cifar10")["spearman"] > 0.4
    for f in ("scores", "summary", "plot"):
        assert first.files[f].is_file() and first.files[f].stat().st_size > 0
    cache = ScoreCache(sqlite_url)
    assert cache.count() == 48
    second = correlate(**kwargs)
    np.testing.assert_array_equal(second.scores["params"], first.scores["params"])
    assert ScoreCache(sqlite_url).count() == 48  # nothing rescored


def test_correlate_excludes_cells(sqlite_url) -> None:
    base = correlate(proxies=["params"], n=10, storage=sqlite_url, n_bootstrap=10,
                     out_dir=None, progress=False, batch_size=8)
    held = correlate(proxies=["params"], n=10, exclude=base.arch_keys[:5], storage=sqlite_url,
                     n_bootstrap=10, out_dir=None, progress=False, batch_size=8)
    assert not set(held.arch_keys) & set(base.arch_keys[:5])


def test_correlate_takes_nb101_hashes_in_a_fresh_process(monkeypatch, shared_data) -> None:
    """Hash keys (what a score table or a database holds) work before anything made them known:
    correlate inverts them through the benchmark."""
    from zcnas.benchmarks import _nb101 as bm
    from zcnas.benchmarks import get_benchmark
    from zcnas.spaces import _nb101

    hashes = sorted(get_benchmark("nb101").keys())[:4]
    monkeypatch.setattr(_nb101, "_KNOWN", {})
    monkeypatch.setattr(bm, "_load", bm._load.__wrapped__)
    r = correlate(space="nb101", benchmark="nb101", proxies=["params"], arch_keys=hashes,
                  batch_size=4, use_cache=False, out_dir=None, card=False, n_bootstrap=10,
                  progress=False)
    assert r.arch_keys == hashes and np.isfinite(r.scores["params"]).all()


def test_input_size_lets_per_sample_proxies_score_tnb101(sqlite_url, shared_data) -> None:
    """TNB101's last module runs at 1x1 on 32x32 images, where per-sample BatchNorm is
    undefined (gradsign fails with that reason); resized to 64x64 it scores, cached apart."""
    common = dict(space="tnb101_micro", benchmark="tnb101_micro", proxies=["gradsign"], n=3,
                  batch_size=4, storage=sqlite_url, out_dir=None, card=False, n_bootstrap=10,
                  progress=False)
    small = correlate(**common)
    assert np.isnan(small.scores["gradsign"]).all()
    big = correlate(**common, input_size=(3, 64, 64))
    assert big.arch_keys == small.arch_keys and np.isfinite(big.scores["gradsign"]).all()
    assert ScoreCache(sqlite_url).count() == 6
    with pytest.raises(ZcnasError, match="channels"):
        correlate(**common, input_size=(1, 64, 64))


def test_reference_rows_of_each_task_use_that_tasks_precomputed_scores(
        tmp_path, sqlite_url, shared_data) -> None:
    """NB-Suite-Zero computed TNB101's proxies per task: the jigsaw row of ref:synflow ranks
    jigsaw's scores (read here from the shared file), never class_scene's; a proxy the file
    lacks for a task is NaN there; a benchmark with one set of scores (NB201) keeps it."""
    import csv
    import gzip

    r = correlate(space="tnb101_micro", benchmark="tnb101_micro", proxies=["params"], n=40,
                  datasets=["class_scene", "jigsaw", "segmentsemantic"], reference=True,
                  batch_size=4, storage=sqlite_url, out_dir=tmp_path / "tnb", n_bootstrap=10,
                  progress=False)
    with gzip.open(shared_data / "tnb101/tnb101_zc_proxies_nbsz.csv.gz", "rt") as f:
        file = {(row["task"], row["arch_str"]): row for row in csv.DictReader(f)
                if row["space"] == "micro"}
    for task in ("class_scene", "jigsaw"):
        theirs = np.array([float(file[(task, k)]["synflow"]) for k in r.arch_keys])
        assert np.allclose(r.values("ref:synflow", task), theirs)
        assert r.row("ref:synflow", task)["spearman"] == pytest.approx(
            rank_correlation(theirs, r.truth[task], n_bootstrap=10).spearman)
    assert not np.allclose(r.values("ref:synflow", "jigsaw"), r.scores["ref:synflow"])
    assert np.isnan(r.values("ref:synflow", "segmentsemantic")).all()  # not computed there
    assert r.row("ref:synflow", "segmentsemantic")["n"] == 0
    header = (tmp_path / "tnb" / "scores.csv").read_text().splitlines()[0].split(",")
    assert "ref:synflow@jigsaw" in header and "ref:synflow" in header

    nb = correlate(proxies=["params"], n=20, datasets=["cifar10", "cifar100"], reference=True,
                   batch_size=4, storage=sqlite_url, out_dir=None, card=False, n_bootstrap=10,
                   progress=False)
    assert nb.per_dataset == {}  # NB201: one set of precomputed scores for both
