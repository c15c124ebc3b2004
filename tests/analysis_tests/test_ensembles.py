from __future__ import annotations

import json

import numpy as np
import pytest

from zcnas.analysis import correlate
from zcnas.analysis import paired_difference
from zcnas.analysis import sample_keys
from zcnas.data import load_batch
from zcnas.ensembles import fit_ensemble
from zcnas.ensembles import fit_weights
from zcnas.ensembles import log_quantile
from zcnas.exceptions import DataError
from zcnas.scoring import resolve as get_proxy
from zcnas.scoring import score_record
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache


MEMBERS = {"members": ["params", "flops"], "pool_size": 16}


def test_log_quantile_orders_by_direction() -> None:
    ref = np.sort(np.array([1.0, 2.0, 3.0, 4.0]))
    hi, lo = log_quantile(4.5, ref, "maximize"), log_quantile(0.5, ref, "maximize")
    assert hi > lo and hi < 0
    assert log_quantile(0.5, ref, "minimize") > log_quantile(4.5, ref, "minimize")


def test_ensemble_uses_cached_members(sqlite_url) -> None:
    space = get_space("nb201")
    batch = load_batch("cifar10", 8, 0)
    cache = ScoreCache(sqlite_url)
    ens = get_proxy("ensemble", **MEMBERS)
    arch = space.sample(1, seed=5)[0]
    rec = score_record(space, ens, arch, batch, cache=cache)
    assert rec.ok and rec.value <= 0
    # the pool (16 cells x 2 members), the arch's 2 member scores, and the ensemble itself
    stored = cache.count()
    assert stored >= 16 * 2 + 1
    again = score_record(space, get_proxy("ensemble", **MEMBERS), arch, batch, cache=cache)
    assert again.cached and again.value == rec.value and cache.count() == stored


def test_fit_weights_recovers_the_informative_member() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=150)
    good, noise = truth + rng.normal(scale=0.3, size=150), rng.normal(size=150)
    weights, tau = fit_weights(np.stack([noise, good], 1), truth, n_trials=60, seed=0)
    assert weights[1] > weights[0] and tau > 0.6


def test_learned_ensemble_file_round_trip(tmp_path, sqlite_url) -> None:
    out = tmp_path / "ens.json"
    spec = fit_ensemble(out=out, members=["params", "flops"], n_train=12, pool_size=16,
                        storage=sqlite_url, n_trials=10, batch_size=8, progress=False)
    saved = json.loads(out.read_text())
    assert saved["train_cells"] == spec["train_cells"] and len(saved["train_cells"]) == 12
    proxy = get_proxy("learned_ensemble", path=str(out))
    assert proxy.get_params() == {"path": str(out)}
    value = score_record("nb201", proxy, spec["train_cells"][0], load_batch("cifar10", 8, 0),
                         cache=ScoreCache(sqlite_url))
    assert value.ok
    with pytest.raises(DataError, match="fit-ensemble"):
        get_proxy("learned_ensemble", path=str(tmp_path / "missing.json"))


def test_holdout_reports_on_disjoint_cells(tmp_path, sqlite_url) -> None:
    result = correlate(proxies=["params", "flops"], n=15, holdout=10, storage=sqlite_url,
                       n_bootstrap=20, out_dir=tmp_path, progress=False, batch_size=8)
    spec = json.loads((tmp_path / "learned_ensemble.json").read_text())
    assert not set(spec["train_cells"]) & set(result.arch_keys)
    assert "learned_ensemble" in result.scores and result.comparisons


def test_paired_difference_detects_a_better_ranker() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=300)
    better = truth + rng.normal(scale=0.2, size=300)
    worse = truth + rng.normal(scale=2.0, size=300)
    diff = paired_difference(better, worse, truth, n_bootstrap=200)
    assert diff.kendall > 0 and diff.significant
    assert not paired_difference(worse, better, truth, n_bootstrap=200).significant


def test_holdout_keeps_the_cells_of_the_plain_run() -> None:
    """Excluding training cells drops only those: the rest of the n cells (and their cached
    scores) are those of the same run without --holdout, topped up to n from the same seed."""
    space = get_space("nb201")
    plain = sample_keys(space, 400, seed=0)
    excluded = plain[:7] + [space.key(space.arch_at(i)) for i in range(5)]
    held = sample_keys(space, 400, seed=0, exclude=excluded)
    assert len(held) == len(set(held)) == 400 and not set(held) & set(excluded)
    assert set(plain) - set(excluded) <= set(held)
