"""The ``consensus`` rule (zcnas.ensembles.consensus_selection) on every benchmark that ships
precomputed proxies (NAS-Bench-Suite-Zero), and how its ``keep`` fraction was chosen: on the
seven tables that are *not* NAS-Bench-201 (NB101, NB301, TNB101 micro/macro tasks), by the mean
Kendall tau of the kept members' log-rank sum. NB201 is only evaluated, never used to choose.

For each table: the members the rule keeps (no labels), the Kendall tau of the kept members'
log-rank sum, of the sum of all members, and of the best single member. The best single member
is picked with the labels (an oracle a label-free user does not have), so "consensus >= best"
is a strong result and "consensus > all" is the rule's own contribution. No compute: the
scores are the benchmarks' files.

    python scripts/consensus_check.py   (about a minute: no proxy is computed)
"""

from __future__ import annotations

import sys

import numpy as np
from scipy import stats

from zcnas.benchmarks import get_benchmark
from zcnas.ensembles import consensus_selection
from zcnas.ensembles import rank_features


# benchmark, dataset, metric: the tables with NB-Suite-Zero proxies
TABLES = [("nb201", "cifar10", "test"), ("nb201", "imagenet16", "test"),
          ("nb101", "cifar10", "valid"), ("nb301", "cifar10", "surrogate_valid"),
          ("tnb101_micro", "class_scene", "valid"), ("tnb101_micro", "class_object", "valid"),
          ("tnb101_micro", "jigsaw", "valid"), ("tnb101_macro", "class_scene", "valid"),
          ("tnb101_macro", "jigsaw", "valid")]
MINIMIZE = {"plain"}  # NASLib's sign conventions: higher is better for every other proxy


KEEPS = (0.25, 0.5, 0.75, 1.0)


def check(name: str, dataset: str, metric: str, keep: float = 0.25) -> dict | None:
    bench = get_benchmark(name)
    ref = bench.reference_scores(dataset)
    keys = sorted(set.intersection(*(set(v) for v in ref.values()))) if ref else []
    proxies = [p for p in ref if len(ref[p]) >= 0.9 * max(len(v) for v in ref.values())]
    keys = sorted(set.intersection(*(set(ref[p]) for p in proxies))) if proxies else []
    if len(proxies) < 3 or len(keys) < 30:
        return None
    scores = np.array([[ref[p][k] for p in proxies] for k in keys])
    truth = np.array([bench.query(k, dataset, metric) for k in keys])
    feats = rank_features(scores, ["minimize" if p in MINIMIZE else "maximize" for p in proxies])
    ok = np.isfinite(feats).all(axis=1) & np.isfinite(truth)
    feats, truth = feats[ok], truth[ok]
    weights, agreement = consensus_selection(feats, keep=keep)

    def tau(x: np.ndarray) -> float:
        return float(stats.kendalltau(x, truth).statistic)

    singles = {p: tau(feats[:, j]) for j, p in enumerate(proxies)}
    best = max(singles, key=singles.get)  # type: ignore[arg-type]
    return {"benchmark": name, "dataset": dataset, "cells": int(ok.sum()),
            "kept": [p for p, w in zip(proxies, weights) if w],
            "consensus": tau(feats @ weights), "all": tau(feats.sum(axis=1)),
            "by_keep": {k: tau(feats @ consensus_selection(feats, k)[0]) for k in KEEPS},
            "best": best, "best_tau": singles[best]}


def main() -> int:
    rows = [r for r in (check(*t) for t in TABLES) if r is not None]
    design = [r for r in rows if r["benchmark"] != "nb201"]
    means = {k: float(np.mean([r["by_keep"][k] for r in design])) for k in KEEPS}
    print("choosing keep on the non-NB201 tables (mean Kendall tau): "
          + ", ".join(f"{k}: {v:.3f}" for k, v in means.items())
          + f" -> keep = {max(means, key=means.get)}")  # type: ignore[arg-type]
    print(f"{'benchmark':<13}{'dataset':<13}{'cells':>6}  {'consensus':>9}  {'all':>6}  "
          f"{'best single (oracle)':<26} kept (keep = 0.25)")
    for r in rows:
        best = f"{r['best']} {r['best_tau']:.3f}"
        print(f"{r['benchmark']:<13}{r['dataset']:<13}{r['cells']:>6}  {r['consensus']:9.3f}  "
              f"{r['all']:6.3f}  {best:<26} {','.join(r['kept'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
