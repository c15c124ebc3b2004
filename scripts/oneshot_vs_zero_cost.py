"""Compute vs ranking on NB201: Kendall tau (and top-k regret) of zero-cost proxies, ensembles,
LGA after a few SGD steps and a weight-sharing supernet after several training lengths,
against the CPU-seconds each spends, from one study file.

    python scripts/oneshot_vs_zero_cost.py studies/oneshot_vs_zero_cost_nb201.toml --group proxies
    python scripts/oneshot_vs_zero_cost.py studies/oneshot_vs_zero_cost_nb201.toml --group supernet
    python scripts/oneshot_vs_zero_cost.py studies/oneshot_vs_zero_cost_nb201.toml --report

Every score goes through ``zcnas.scoring.score_record`` into the study's SQL score cache, so a
rerun (or an interrupted run) computes only what is missing. The CPU seconds of each fresh score
(``time.process_time`` around it, one torch thread) go to ``<out>/cpu-<group>.jsonl``; the score
cache's own ``seconds`` are wall seconds, which a shared machine inflates. An ensemble's cost is
the sum of its members' CPU seconds on the cell; a supernet's cost is its training CPU seconds
(once, read from the checkpoint) plus its per-child evaluation.

The report (``<out>/tau_vs_compute.md``, ``.csv`` and ``tau_vs_compute.png``) gives, per
evaluator: the cells it was run on, Kendall tau on the core cells (all evaluators) and on all its
cells, top-k regret on the core cells (best true accuracy of the core minus the best true
accuracy among the evaluator's top k), CPU s per cell, one-time CPU s and the CPU seconds it
would take to rank ``cells`` cells (setup + cells x per-cell).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

import numpy as np


try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def load_config(path: str) -> dict[str, Any]:
    cfg = tomllib.loads(Path(path).read_text())
    study = cfg.get("study", {})
    for key in ("name", "storage", "out", "space", "benchmark", "datasets", "core", "cells"):
        if key not in study:
            raise SystemExit(f"{path}: [study] needs {key!r}")
    labels = [e["label"] for e in cfg.get("evaluator", [])]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"{path}: evaluator labels must be unique")
    return cfg


def study_cells(space: Any, core: int, total: int) -> tuple[list[str], list[str]]:
    """(core cells, all cells): the core first, then new cells of a second seeded sample."""
    core_keys = [space.key(a) for a in space.sample(core, seed=0)]
    seen = set(core_keys)
    extra = []
    for a in space.sample(total, seed=1):
        k = space.key(a)
        if k not in seen and len(core_keys) + len(extra) < total:
            seen.add(k)
            extra.append(k)
    return core_keys, core_keys + extra


def cells_of(entry: Mapping[str, Any], core: list[str], every: list[str]) -> list[str]:
    which = entry.get("cells", "core")
    if which == "all":
        return every
    if which == "core":
        return core
    return core[: int(which)]


class CpuLog:
    """CPU seconds of fresh scores, one JSON line each (several processes: one file each)."""

    def __init__(self, out: Path, group: str | None) -> None:
        self.out = out
        self.path = out / f"cpu-{group or 'all'}.jsonl"
        self.known = self.read(out)

    @staticmethod
    def read(out: Path) -> dict[tuple[str, str], float]:
        known: dict[tuple[str, str], float] = {}
        for p in sorted(out.glob("cpu-*.jsonl")):
            for line in p.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    known[(r["label"], r["arch"])] = float(r["cpu"])
        return known

    def add(self, label: str, arch: str, cpu: float) -> None:
        self.known[(label, arch)] = cpu
        with self.path.open("a") as f:
            f.write(json.dumps({"label": label, "arch": arch, "cpu": cpu}) + "\n")


def make_scorer(entry: Mapping[str, Any]) -> Any:
    from zcnas.scoring import resolve

    return resolve(entry["proxy"], **dict(entry.get("params", {})))


def score_group(cfg: dict[str, Any], group: str | None, progress: bool,
                only: list[str] | None = None, train: bool = False) -> None:
    import torch
    from tqdm.auto import tqdm

    import zcnas
    from zcnas.scoring import score_record

    torch.set_num_threads(int(cfg["study"].get("threads", 1)))
    s = cfg["study"]
    out = Path(s["out"])
    out.mkdir(parents=True, exist_ok=True)
    space = zcnas.get_space(s["space"])
    cache = zcnas.ScoreCache(s["storage"])
    d = cfg.get("data", {})
    batch = zcnas.load_batch(d.get("source", "cifar10"), int(d.get("batch_size", 64)),
                             int(d.get("seed", 0)))
    core, every = study_cells(space, int(s["core"]), int(s["cells"]))
    log = CpuLog(out, group)
    seed = int(s.get("seed", 0))
    entries = [e for e in cfg["evaluator"] if (group is None or e.get("group") == group)
               and (not only or e["label"] in only)]
    # the core cells of every evaluator first, then the rest: useful results come early
    plan = [(e, cells_of(e, core, every)[: len(core)]) for e in entries]
    plan += [(e, cells_of(e, core, every)[len(core):]) for e in entries]
    for entry, keys in plan:
        if not keys:
            continue
        scorer = make_scorer(entry)
        if entry["proxy"] == "oneshot":  # train/load once, outside the per-child timing
            path = scorer.checkpoint(space, batch.num_classes, seed=seed, cache=cache)
            if not path.is_file() and not train:
                print(f"{entry['label']}: no supernet checkpoint {path} yet (train it with "
                      f"`zcnas oneshot train`, or pass --train); skipped", flush=True)
                continue
            path = scorer.prepare(space, batch.num_classes, seed=seed, cache=cache)
            from zcnas.oneshot import load_supernet

            load_supernet(path, space)
        label = entry["label"]
        bar = tqdm(keys, desc=label, disable=not progress, unit="cell")
        for key in bar:
            t0 = time.process_time()
            rec = score_record(space, scorer, key, batch, seed=seed, cache=cache)
            cpu = time.process_time() - t0
            if not rec.cached and (label, key) not in log.known:
                log.add(label, key, cpu)


# --- report ---------------------------------------------------------------------------------------
def setup_cpu(entry: Mapping[str, Any], scorer: Any, space: Any, batch: Any, seed: int,
              cache: Any) -> float:
    if hasattr(scorer, "setup_seconds"):
        return float(scorer.setup_seconds(space, batch, seed=seed, cache=cache) or 0.0)
    return 0.0


def regret(scores: np.ndarray, truth: np.ndarray, k: int, direction: str) -> float:
    keep = np.isfinite(scores) & np.isfinite(truth)
    x, y = scores[keep], truth[keep]
    if direction == "minimize":
        x = -x
    if len(x) == 0:
        return float("nan")
    top = np.argsort(-x, kind="stable")[:k]
    return float(y.max() - y[top].max())


def report(cfg: dict[str, Any]) -> Path:
    import zcnas
    from zcnas.analysis import rank_correlation
    from zcnas.reports import fmt
    from zcnas.reports import markdown_table
    from zcnas.reports import pyplot
    from zcnas.reports import write_csv
    from zcnas.scoring import stored_records

    s = cfg["study"]
    out = Path(s["out"])
    space = zcnas.get_space(s["space"])
    bench = zcnas.get_benchmark(s["benchmark"])
    cache = zcnas.ScoreCache(s["storage"])
    d = cfg.get("data", {})
    batch = zcnas.load_batch(d.get("source", "cifar10"), int(d.get("batch_size", 64)),
                             int(d.get("seed", 0)))
    seed, k, n_total = int(s.get("seed", 0)), int(s.get("top_k", 10)), int(s["cells"])
    core, every = study_cells(space, int(s["core"]), n_total)
    datasets = list(s["datasets"])
    truth = {ds: {key: bench.query(key, ds, s.get("metric", "test")) for key in every}
             for ds in datasets}
    cpu = CpuLog.read(out)
    by_label = {e["label"]: e for e in cfg["evaluator"]}
    gathered = []
    for entry in cfg["evaluator"]:
        scorer = make_scorer(entry)
        keys = cells_of(entry, core, every)
        recs = stored_records(cache, space, scorer, batch, seed, keys)
        done = [key for key in keys if key in recs]
        if not done:
            continue
        values = {key: (recs[key].value if recs[key].ok else float("nan")) for key in done}
        per_cell = []
        if entry["proxy"] == "ensemble":  # the members' cost
            members = list(entry.get("params", {}).get("members") or scorer.member_names)
            member_labels = [lab for lab, e in by_label.items()
                             if e["proxy"] in members and not e.get("params")]
            for key in done:
                c = [cpu.get((lab, key)) for lab in member_labels]
                if all(x is not None for x in c) and len(c) == len(members):
                    per_cell.append(sum(c))  # type: ignore[arg-type]
        else:
            per_cell = [cpu[(entry["label"], key)] for key in done
                        if (entry["label"], key) in cpu]
        gathered.append((entry, scorer, values, per_cell))
    # the cells every evaluator has scored: the fair common ground of the table and plot
    common = [key for key in core if all(key in g[2] for g in gathered)]
    rows = []
    for entry, scorer, values, per_cell in gathered:
        setup = setup_cpu(entry, scorer, space, batch, seed, cache)
        mean_cpu = float(np.mean(per_cell)) if per_cell else float("nan")
        row: dict[str, Any] = {
            "evaluator": entry["label"], "proxy": entry["proxy"],
            "params": json.dumps(entry.get("params", {}), sort_keys=True),
            "cells": len(values), "common_cells": len(common),
            "failed": sum(1 for v in values.values() if not np.isfinite(v)),
            "cpu_s_per_cell": mean_cpu, "cpu_cells_timed": len(per_cell),
            "setup_cpu_s": setup, f"cpu_s_for_{n_total}_cells": setup + n_total * mean_cpu,
        }
        direction = scorer.direction
        for ds in datasets:
            x = np.array([values[key] for key in common])
            y = np.array([truth[ds][key] for key in common])
            rc = rank_correlation(x, y, n_bootstrap=1000, direction=direction)
            row[f"tau_core_{ds}"] = rc.kendall
            row[f"tau_core_{ds}_lo"], row[f"tau_core_{ds}_hi"] = rc.kendall_ci
            row[f"rho_core_{ds}"] = rc.spearman
            row[f"regret{k}_core_{ds}"] = regret(x, y, k, direction)
            xa = np.array(list(values.values()))
            ya = np.array([truth[ds][key] for key in values])
            row[f"tau_all_{ds}"] = rank_correlation(xa, ya, n_bootstrap=20,
                                                    direction=direction).kendall
        rows.append(row)
    full = rows
    write_csv(out / "tau_vs_compute.csv", full)
    header = ["evaluator", "cells"] + [f"tau {ds} [95% CI]" for ds in datasets] + \
        [f"tau {datasets[0]} all", f"top-{k} regret {datasets[0]}", "CPU s / cell",
         "one-time CPU s", f"CPU s for {n_total} cells"]
    table = []
    for r in full:
        table.append([r["evaluator"], str(r["cells"])] + [
            f"{fmt(r[f'tau_core_{ds}'], 3)} [{fmt(r[f'tau_core_{ds}_lo'], 2)}, "
            f"{fmt(r[f'tau_core_{ds}_hi'], 2)}]" for ds in datasets] + [
            fmt(r[f"tau_all_{datasets[0]}"], 3), fmt(r[f"regret{k}_core_{datasets[0]}"], 2),
            fmt(r["cpu_s_per_cell"], 2), fmt(r["setup_cpu_s"], 0),
            fmt(r[f"cpu_s_for_{n_total}_cells"], 0)])
    lines = [f"# {s['name']}", "",
             f"Kendall tau against NB201 200-epoch {s.get('metric', 'test')} accuracy on the "
             f"{len(common)} cells every evaluator scored (95% bootstrap interval) and on all "
             f"the cells an evaluator ran on; top-{k} regret (percentage points) on the "
             f"{len(common)} common cells; "
             f"CPU seconds measured with time.process_time, one torch thread, on this machine.",
             ""] + markdown_table(header, table) + [""]
    (out / "tau_vs_compute.md").write_text("\n".join(lines))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, ds in zip(axes, datasets):
        for r in full:
            x, y = r[f"cpu_s_for_{n_total}_cells"], r[f"tau_core_{ds}"]
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            kind = ("tab:red" if r["proxy"] == "oneshot" else "tab:green" if r["proxy"] == "lga"
                    else "tab:purple" if r["proxy"] == "ensemble" else "tab:blue")
            ax.errorbar([x], [y], yerr=[[y - r[f"tau_core_{ds}_lo"]],
                                        [r[f"tau_core_{ds}_hi"] - y]],
                        fmt="o", color=kind, capsize=2, ms=5)
            ax.annotate(r["evaluator"], (x, y), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(f"CPU seconds to rank {n_total} cells (one-time + per cell)")
        ax.set_title(f"NB201 {ds}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"Kendall tau on the {len(common)} common cells")
    fig.suptitle("blue: zero-cost proxies, purple: ensembles, green: LGA, red: supernet",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "tau_vs_compute.png", dpi=130)
    plt.close(fig)
    return out / "tau_vs_compute.md"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--group", default=None, help="score only the evaluators of this group")
    p.add_argument("--report", action="store_true", help="write the table and plot only")
    p.add_argument("--storage", default=None, help="override [study] storage")
    p.add_argument("--out", default=None, help="override [study] out")
    p.add_argument("--only", default=None, help="comma-separated evaluator labels")
    p.add_argument("--train", action="store_true",
                   help="train a missing supernet (default: skip its evaluators)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if args.storage:
        cfg["study"]["storage"] = args.storage
    if args.out:
        cfg["study"]["out"] = args.out
    os.environ.setdefault("OMP_NUM_THREADS", str(cfg["study"].get("threads", 1)))
    if args.report:
        print(Path(report(cfg)).read_text())
        return 0
    only = [x.strip() for x in args.only.split(",")] if args.only else None
    score_group(cfg, args.group, not args.no_progress, only, args.train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
