"""Fitting learned proxy ensembles on a small labelled set of cells."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from scipy import stats

from zcnas.benchmarks import DEFAULT_BENCHMARK
from zcnas.benchmarks import get_benchmark
from zcnas.data import load_batch
from zcnas.ensembles._pool import DEFAULT_MEMBERS
from zcnas.ensembles._pool import PoolEnsemble
from zcnas.ensembles._pool import RankEnsemble
from zcnas.scoring import score_many
from zcnas.spaces import DEFAULT_SPACE
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.version import __version__


def member_features(ens: PoolEnsemble, member_scores: dict[str, np.ndarray],
                    reference: list[np.ndarray]) -> np.ndarray:
    """Rows of per-member log-quantiles (NaN rows where a member failed)."""
    cols = np.stack([member_scores[m.name] for m in ens.members()], axis=1)
    out = np.full(cols.shape, np.nan)
    for i, row in enumerate(cols):
        if np.isfinite(row).all():
            out[i] = ens.features(list(row), reference)
    return out


def fit_weights(features: np.ndarray, truth: np.ndarray, *, n_trials: int = 300,
                seed: int = 0) -> tuple[list[float], float]:
    """Non-negative member weights (each in [0, 1]) maximising Kendall tau of
    ``features @ w`` against ``truth``, found by Optuna's TPE (seeded). Rows with NaN are
    dropped. Returns (weights, training tau)."""
    ok = np.isfinite(features).all(axis=1) & np.isfinite(truth)
    x, y = features[ok], truth[ok]
    m = x.shape[1]

    def objective(trial: optuna.Trial) -> float:
        w = np.array([trial.suggest_float(f"w{j}", 0.0, 1.0) for j in range(m)])
        if not w.any():
            return -1.0
        return float(stats.kendalltau(x @ w, y).statistic)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
        study.enqueue_trial({f"w{j}": 1.0 for j in range(m)})  # start from the plain rank sum
        study.optimize(objective, n_trials=n_trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = [study.best_params[f"w{j}"] for j in range(m)]
    return best, float(study.best_value)


def rank_features(scores: np.ndarray, directions: Sequence[str] | None = None) -> np.ndarray:
    """Columns of ``scores`` (cells x members, NaN for failures) as log rank quantiles within
    the given cells (higher is better; NaN stays NaN): a feature scale that needs no pool."""
    from scipy.stats import rankdata

    out = np.full(scores.shape, np.nan)
    for j in range(scores.shape[1]):
        col = scores[:, j] if not directions or directions[j] != "minimize" else -scores[:, j]
        ok = np.isfinite(col)
        out[ok, j] = np.log(rankdata(col[ok]) / (ok.sum() + 1))
    return out


def label_budget(features: np.ndarray, truth: np.ndarray, budgets: Sequence[int], *,
                 draws: int = 10, seed: int = 0, n_trials: int = 200,
                 evaluate_on: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The learned ensemble as a function of its label count: for each ``k`` in ``budgets``
    and each of ``draws`` seeded draws, fit the weights on ``k`` labelled cells and report
    Kendall tau on every other cell (or on the cells of the boolean mask ``evaluate_on``,
    never among the k). Returns one row per k: mean, std, min, max of the held-out tau and the
    unweighted (label-free) log-rank sum's tau on the same cells."""
    ok = np.isfinite(features).all(axis=1) & np.isfinite(truth)
    pool = np.flatnonzero(ok if evaluate_on is None else ok & ~evaluate_on)
    held = None if evaluate_on is None else np.flatnonzero(ok & evaluate_on)
    rows = []
    for k in budgets:
        if k >= len(pool):
            raise ValueError(f"{k} labels asked for, but only {len(pool)} labelled cells exist")
        taus, base = [], []
        for d in range(draws):
            rng = np.random.default_rng(seed + 1000 * d + k)
            train = rng.choice(pool, size=k, replace=False)
            test = held if held is not None else np.setdiff1d(pool, train)
            w, _ = fit_weights(features[train], truth[train], n_trials=n_trials, seed=seed + d)
            taus.append(float(stats.kendalltau(features[test] @ np.array(w),
                                                truth[test]).statistic))
            base.append(float(stats.kendalltau(features[test].sum(axis=1),
                                                truth[test]).statistic))
        rows.append({"labels": k, "draws": draws, "held_out": int(len(test)),
                     "kendall_mean": float(np.mean(taus)), "kendall_std": float(np.std(taus)),
                     "kendall_min": float(np.min(taus)), "kendall_max": float(np.max(taus)),
                     "label_free_sum_kendall": float(np.mean(base))})
    return rows


def fit_ensemble(*, out: str | Path, space: str = DEFAULT_SPACE,
                 members: Sequence[str] = DEFAULT_MEMBERS,
                 member_params: Mapping[str, Mapping[str, Any]] | None = None,
                 benchmark: str = DEFAULT_BENCHMARK, dataset: str | None = None,
                 metric: str | None = None,
                 n_train: int = 100, train_seed: int = 1, train_cells: Sequence[str] | None = None,
                 pool_size: int = 256, pool_seed: int = 0, data: str = "cifar10",
                 batch_size: int = 64, data_seed: int = 0, seed: int = 0, device: str = "cpu",
                 storage: str | None = None, n_trials: int = 300, progress: bool = True
                 ) -> dict[str, Any]:
    """Fit member weights on ``n_train`` labelled cells and save them to ``out`` (JSON).

    The file records the members, weights, reference pool, the training cells and the
    ground truth used, so ``learned_ensemble(path=out)`` reproduces the proxy and a hold-out
    evaluation can exclude exactly those cells.
    """
    sp = get_space(space)
    bm = get_benchmark(benchmark)
    dataset = dataset or bm.datasets[0]
    metric = metric or bm.metrics[0]
    if train_cells is None:
        train_cells = [sp.key(a) for a in sp.sample(n_train, seed=train_seed)]
    train_cells = list(train_cells)
    batch = load_batch(data, batch_size, data_seed)
    cache = ScoreCache(storage)
    ens = RankEnsemble(members=members, member_params=dict(member_params or {}),
                       pool_size=pool_size, pool_seed=pool_seed)
    reference = ens.reference(sp, batch, seed=seed, device=device, cache=cache, progress=progress)
    scores, _ = score_many(sp, ens.members(), train_cells, batch, seed=seed, device=device,
                           cache=cache, progress=progress, desc="training cells")
    truth = np.array([bm.query(k, dataset, metric) for k in train_cells])
    weights, tau = fit_weights(member_features(ens, scores, reference), truth, n_trials=n_trials,
                               seed=seed)
    spec = {
        "members": list(ens.member_names), "member_params": ens.member_params,
        "weights": weights, "pool_size": pool_size, "pool_seed": pool_seed,
        "space": space, "benchmark": benchmark, "dataset": dataset, "metric": metric,
        "train_kendall": tau, "train_cells": train_cells, "data": data,
        "batch_size": batch_size, "data_seed": data_seed, "batch_id": batch.identity,
        "seed": seed, "zcnas_version": __version__,
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1))
    return spec
