"""Vanilla vs proxy-assisted NNI search on NAS-Bench-201 at equal benchmark queries.

For each strategy (RegularizedEvolution, PolicyBasedRL) and seed, three runs of
``zcnas.integration.nni.run_strategy`` on the benchmark ground truth:

- ``vanilla``: NNI's own strategy;
- ``assisted``: each proposal is the proxy argmax of ``--n-candidates`` single-op mutations
  (G-REA / G-RL, ``credit="selected"``);
- ``control``: the same proposal with 1 candidate (same mutation operator, no proxy).

Prints one JSON line per run and a mean/std table of the best-found accuracy. Proxy scores are
cached in ``--storage``, so a second invocation only re-runs the searches; ``--report`` only
reads the stored studies and prints the best-found accuracy after 25/50/100 queries.

    PYTHONPATH=. python scripts/nni_assisted_search.py --storage sqlite:///nni_assisted.db
    PYTHONPATH=. python scripts/nni_assisted_search.py --storage sqlite:///nni_assisted.db --report
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

import optuna

from zcnas.data import load_batch
from zcnas.search.nni import require_nni
from zcnas.search.nni import run_strategy


KWARGS = {
    # NAS-Bench-201's REA setting (population 10, tournament 3)
    "RegularizedEvolution": {"population_size": 10, "sample_size": 3},
    "PolicyBasedRL": {"samples_per_update": 10},
}


def study_name(strategy: str, arm: str, queries: int, seed: int) -> str:
    return f"assisted-{strategy}-{arm}-q{queries}-seed{seed}"


def report(args: argparse.Namespace) -> None:
    """Best-found accuracy after k queries, mean +- std over the seeds, from the stored studies
    (the latest run of each)."""
    checkpoints = sorted({k for k in (10, 25, 50, args.queries) if k <= args.queries})
    print(f"best-found {args.dataset} {args.metric} accuracy (mean +- std over seeds) after k "
          f"benchmark queries")
    print(f"{'strategy':22s} {'arm':9s} {'n':>2s} " + " ".join(f"{'k=' + str(k):>14s}"
                                                          for k in checkpoints))
    for strategy in args.strategies:
        for arm in args.arms:
            curves = []
            for seed in args.seeds:
                try:
                    study = optuna.load_study(
                        study_name=study_name(strategy, arm, args.queries, seed),
                        storage=args.storage)
                except KeyError:
                    continue
                last = max(t.user_attrs["nni_run"] for t in study.trials)
                trials = sorted((t for t in study.trials if t.user_attrs["nni_run"] == last),
                                key=lambda t: t.user_attrs["nni_index"])
                if len(trials) < args.queries:
                    continue
                values = [t.value for t in trials]
                curves.append([max(values[:k]) for k in checkpoints])
            if not curves:
                continue
            cells = []
            for i in range(len(checkpoints)):
                col = [c[i] for c in curves]
                std = statistics.stdev(col) if len(col) > 1 else 0.0
                cells.append(f"{statistics.mean(col):6.2f} +- {std:4.2f}")
            print(f"{strategy:22s} {arm:9s} {len(curves):2d} " + " ".join(cells))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage", required=True)
    p.add_argument("--proxy", default="gradsign")
    p.add_argument("--strategies", nargs="+", default=list(KWARGS))
    p.add_argument("--arms", nargs="+", default=["vanilla", "assisted", "control"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--n-candidates", type=int, default=10)
    p.add_argument("--data", default="cifar10")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--metric", default="test")
    p.add_argument("--report", action="store_true", help="only summarise the stored studies")
    args = p.parse_args()
    if args.report:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        report(args)
        return

    require_nni()
    logging.getLogger("nni").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    batch = load_batch(args.data, args.batch_size, 0)
    results: dict[tuple[str, str], list[float]] = {}
    for seed in args.seeds:
        for strategy in args.strategies:
            for arm in args.arms:
                start = time.perf_counter()
                assisted = arm != "vanilla"
                run = run_strategy(
                    "nb201", args.proxy if assisted else None, strategy,
                    n_trials=args.queries, batch=batch, seed=seed, storage=args.storage,
                    study_name=study_name(strategy, arm, args.queries, seed),
                    strategy_kwargs=KWARGS.get(strategy, {}), benchmark="nb201",
                    dataset=args.dataset, metric=args.metric, assisted=assisted,
                    n_candidates=args.n_candidates if arm == "assisted" else 1,
                )
                results.setdefault((strategy, arm), []).append(run.best_value or float("nan"))
                print(json.dumps({
                    "strategy": strategy, "arm": arm, "seed": seed, "queries": run.n_trials,
                    "best": run.best_value, "best_key": run.best_key,
                    "unique": len({k for k, _ in run.history}),
                    "seconds": round(time.perf_counter() - start, 1),
                }), flush=True)
    print(f"\nbest-found {args.dataset} {args.metric} accuracy after {args.queries} queries "
          f"({args.proxy}, batch {args.batch_size} {args.data}, {args.n_candidates} candidates)")
    for (strategy, arm), values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{strategy:22s} {arm:9s} n={len(values)}  {statistics.mean(values):.2f} +- "
              f"{std:.2f}  {[round(v, 2) for v in values]}")


if __name__ == "__main__":
    main()
