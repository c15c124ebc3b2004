"""Label budgets of the learned ensemble on NAS-Bench-201 (issue 14): Kendall tau on held-out
cells after fitting the member weights on k labelled cells, mean and spread over draws.

Two inputs:

* ``--scores DIR[,DIR...]``: ``scores.csv`` files written by ``zcnas correlate`` (zcnas's own
  proxy scores of the same cells); budgets below the number of cells, each evaluated on the
  cells not drawn, or (``--evaluate-on DIR``) always on that dir's cells, the labelled ones
  drawn from the other dirs' cells only.
* ``--nbsz``: NAS-Bench-Suite-Zero's precomputed proxies of the 9,445 cells without unreachable
  ops (the inputs GRAF used), for budgets up to 1000 labels.

Features are log rank quantiles within the evaluated cells (``zcnas.ensembles.rank_features``);
weights are fitted by ``zcnas.ensembles.fit_weights`` (Optuna TPE on Kendall tau). Every row is
``fitted-with-labels`` and says how many labels it used.

    python scripts/label_budgets.py --nbsz --budgets 20,100,1000 --draws 10
    python scripts/label_budgets.py --scores zcnas_out/nb201_a,zcnas_out/nb201_b --budgets 20,100
    python scripts/label_budgets.py --scores zcnas_out/card,zcnas_out/extra \\
        --evaluate-on zcnas_out/card --budgets 20,100,1000
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
import sys

import numpy as np

from zcnas.benchmarks import get_benchmark
from zcnas.data import data_dir
from zcnas.ensembles import label_budget
from zcnas.ensembles import rank_features
from zcnas.scoring import is_evaluator
from zcnas.scoring import resolve


NBSZ_PROXIES = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot",
                "params", "plain", "snip", "synflow", "zen")
DATASETS = ("cifar10", "cifar100", "imagenet16")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def nbsz_inputs(dataset: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(scores, member names, arch keys); CIFAR-100 uses the CIFAR-10 file's proxies (computed
    on CIFAR-10 images, as zcnas scores every NB201 head)."""
    name = "imagenet16" if dataset == "imagenet16" else "cifar10"
    rows = _read(data_dir() / f"nb201/nb201_zc_proxies_{name}.csv")
    keys = [r["arch"] for r in rows]
    scores = np.array([[float(r[p]) for p in NBSZ_PROXIES] for r in rows])
    return scores, list(NBSZ_PROXIES), keys


def zcnas_inputs(dirs: list[str], dataset: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(scores, member names, arch keys) of every cell in any of ``dirs`` (a member some dir
    lacks is NaN on that dir's cells); the same cell in two dirs keeps the later score."""
    columns: dict[str, dict[str, float]] = {}
    keys: list[str] = []
    for d in dirs:
        rows = _read(Path(d) / "scores.csv")
        seen = set(keys)
        keys += [r["arch"] for r in rows if r["arch"] not in seen]
        for col in rows[0]:
            if (col == "arch" or col.startswith("nb201_") or col.startswith("ref:")
                    or "@" in col or is_evaluator(resolve(col))):
                continue  # truth, reference scores, seed averages, ensembles: not members
            columns.setdefault(col, {}).update(
                {r["arch"]: float(r[col]) if r[col] not in ("", "nan") else np.nan for r in rows})
    names = sorted(columns)
    scores = np.array([[columns[n].get(k, np.nan) for n in names] for k in keys])
    return scores, names, keys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scores", default=None, help="comma-separated zcnas correlate out dirs")
    p.add_argument("--nbsz", action="store_true", help="NAS-Bench-Suite-Zero's proxies")
    p.add_argument("--evaluate-on", default=None, metavar="DIR",
                   help="with --scores: report tau only on this correlate dir's cells and draw "
                        "the labelled cells from the others")
    p.add_argument("--budgets", default="20,100,1000")
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--trials", type=int, default=200, help="TPE trials per fit")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    bench = get_benchmark("nb201")
    out = []
    for dataset in DATASETS:
        if args.nbsz:
            scores, names, keys = nbsz_inputs(dataset)
            source = "NAS-Bench-Suite-Zero proxies (GRAF's inputs)"
            directions = ["minimize" if n == "plain" else "maximize" for n in names]
        else:
            scores, names, keys = zcnas_inputs(args.scores.split(","), dataset)
            source = "zcnas proxies"
            directions = None
        truth = np.array([bench.query(k, dataset, "test") for k in keys])
        feats = rank_features(scores, directions)
        keep = np.isfinite(feats).mean(axis=0) > 0.9  # members that mostly score
        feats, used = feats[:, keep], [n for n, k in zip(names, keep) if k]
        held = None
        if args.evaluate_on:
            card = {r["arch"] for r in _read(Path(args.evaluate_on) / "scores.csv")}
            held = np.array([k in card for k in keys])
        labelled = np.isfinite(feats).all(axis=1) & (True if held is None else ~held)
        usable = [b for b in budgets if b < labelled.sum() - (0 if held is not None else 50)]
        for row in label_budget(feats, truth, usable, draws=args.draws, n_trials=args.trials,
                                evaluate_on=held):
            row.update(dataset=dataset, source=source, members=",".join(used), cells=len(keys),
                       tag="fitted-with-labels")
            out.append(row)
            print(f"{dataset:<11} {source:<46} labels {row['labels']:>5}  held-out "
                  f"{row['held_out']:>5}  tau {row['kendall_mean']:.3f} +- "
                  f"{row['kendall_std']:.3f} [{row['kendall_min']:.3f}, {row['kendall_max']:.3f}]"
                  f"  (unweighted sum {row['label_free_sum_kendall']:.3f})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
