"""The report of :func:`zcnas.search.compare.compare`: per-cell curves from the stored studies, the
table (mean ± std over seeds, paired assisted-vs-vanilla tests) and best-so-far plots.

Files in the output folder: ``cells.csv`` (one row per cell), ``summary.csv`` and ``summary.md``
(one row per dataset x algorithm x mode, plus the paired tests), ``curves_<dataset>.png``
(mean best-so-far test accuracy against queries, and against simulated seconds with and without
the proxy's cost).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from zcnas.analysis import holm
from zcnas.analysis import mean_std
from zcnas.analysis import paired_test
from zcnas.benchmarks import get_benchmark
from zcnas.data import load_batch
from zcnas.reports import CurveGroup
from zcnas.reports import anytime_curves
from zcnas.reports import fmt
from zcnas.reports import write_csv
from zcnas.scoring import resolve
from zcnas.scoring import score_key
from zcnas.search._compare_config import Cell
from zcnas.search._compare_config import CompareConfig
from zcnas.search._features import MemoScoreCache
from zcnas.search._report import FINISHED
from zcnas.search._report import Truth
from zcnas.search._report import trial_rows
from zcnas.spaces import get_space
from zcnas.storage import redact


def _candidates(attrs: dict[str, Any]) -> list[str]:
    """Architecture keys the proxy scored for one trial (Optuna prescreen or NNI assisted)."""
    raw = attrs.get("prescreen_candidates") or attrs.get("prescreen_scored")
    return [k for k, _ in json.loads(raw)] if raw else []


class _ProxyCost:
    """Stored compute seconds of one proxy score (the cache holds the first computation's)."""

    def __init__(self, cfg: CompareConfig, cache: MemoScoreCache) -> None:
        self.cfg, self.cache = cfg, cache
        self.space = get_space(cfg.space)
        self._batches: dict[int, Any] = {}
        self._loaded: set[tuple[str, int]] = set()
        self.missing = 0

    def _batch(self, cell: Cell) -> Any:
        classes = self.cfg.proxy_classes(cell.dataset)
        if classes not in self._batches:
            d = self.cfg.data
            self._batches[classes] = load_batch(d["source"], d["batch_size"], d["seed"], classes)
        return self._batches[classes]

    def setup(self, cell: Cell) -> float:
        """One-time seconds of the cell's evaluator (e.g. a supernet's training), charged once
        per run: its ``setup_seconds`` if it has one, else 0."""
        m = cell.mode
        if not m.proxy:
            return 0.0
        proxy = resolve(m.proxy, **m.proxy_params)
        if not hasattr(proxy, "setup_seconds"):
            return 0.0
        return float(proxy.setup_seconds(self.space, self._batch(cell),
                                         seed=self.cfg.proxy_init_seed, cache=self.cache) or 0.0)

    def seconds(self, cell: Cell, arch_key: str) -> float:
        m = cell.mode
        proxy = resolve(m.proxies[0], **m.proxy_params)
        batch = self._batch(cell)
        if (proxy.name, batch.num_classes) not in self._loaded:
            self.cache.preload(self.space, proxy, batch, self.cfg.proxy_init_seed)
            self._loaded.add((proxy.name, batch.num_classes))
        rec = self.cache.get(score_key(self.space, proxy, arch_key, batch,
                                       self.cfg.proxy_init_seed))
        if rec is None:
            self.missing += 1
            return 0.0
        return float(rec.seconds)


def cell_curve(cfg: CompareConfig, study: optuna.Study, cell: Cell,
               cost: _ProxyCost) -> list[dict[str, Any]]:
    """Per query: cumulative train / charged proxy seconds and the incumbent's test accuracy.

    The incumbent is the best trial by the search metric; its ``metric`` (test) is reported.
    Proxy seconds are charged once per architecture per run, at the trial that first scored it:
    a warm-up pool (all of it) before the first query; for zcnas samplers the seconds each
    trial recorded (``proxy_charge``); for pre-selection the stored seconds of its candidates.
    An evaluator's one-time setup (a supernet's training) is charged once per run, up front.
    """
    truth = Truth(get_benchmark(cfg.benchmark), cell.dataset, cfg.metric)
    rows = trial_rows(study, truth)
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.state in FINISHED),
                    key=lambda t: t.number)
    seen: set[str] = set()
    warm = study.user_attrs.get("zcnas_warmup") or {}
    charged = float(warm.get("charged_seconds", warm.get("proxy_seconds", 0.0)) or 0.0)
    charged += cost.setup(cell)
    seen.update(warm.get("pool_keys", ()))
    out = []
    for row, t in zip(rows, trials):
        if row["cum_queries"] > cfg.queries(cell.dataset):
            break
        if cell.mode.assisted:
            if "proxy_charge" in t.user_attrs:
                for key, secs in json.loads(t.user_attrs["proxy_charge"]):
                    if key not in seen:
                        seen.add(key)
                        charged += float(secs)
            for key in _candidates(t.user_attrs):
                if key not in seen:
                    seen.add(key)
                    charged += cost.seconds(cell, key)
        out.append({
            "queries": row["cum_queries"], "train_seconds": row["cum_train_seconds"],
            "proxy_seconds": charged, "seconds": row["cum_train_seconds"] + charged,
            "incumbent_test": row["incumbent_true"], "best_test_evaluated":
                row["best_true_evaluated"], "complete": t.state == TrialState.COMPLETE,
        })
    for r in out:
        r["proxy_evals"] = len(seen)
    return out


def _at(curve: list[dict[str, Any]], key: str, budget: float) -> float | None:
    """Incumbent test accuracy with at most ``budget`` of ``key`` spent (None before any)."""
    best = None
    for r in curve:
        if r[key] > budget:
            break
        best = r["incumbent_test"]
    return best






def write_report(cfg: CompareConfig, rdb: Any, skipped: dict[str, str],
                 out: Path) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Read every cell's study, write cells.csv, summary.csv/.md and curves_<dataset>.png."""
    out.mkdir(parents=True, exist_ok=True)
    cache = MemoScoreCache(cfg.storage)
    cost = _ProxyCost(cfg, cache)
    known = set(optuna.get_all_study_names(storage=rdb))
    cells_rows: list[dict[str, Any]] = []
    curves: dict[tuple[str, str, str], list[list[dict[str, Any]]]] = {}
    for cell in cfg.cells():
        base = {"dataset": cell.dataset, "algorithm": cell.algorithm.label,
                "mode": cell.mode.label, "seed": cell.seed, "study": cell.study_name,
                "algorithm_name": cell.algorithm.name, "mode_name": cell.mode.name}
        if cell.study_name in skipped or cell.study_name not in known:
            cells_rows.append({**base, "status": f"skipped: {skipped[cell.study_name]}"
                               if cell.study_name in skipped else "not run"})
            continue
        study = optuna.load_study(study_name=cell.study_name, storage=rdb)
        curve = cell_curve(cfg, study, cell, cost)
        curves.setdefault((cell.dataset, cell.algorithm.name, cell.mode.name), []).append(curve)
        last = curve[-1] if curve else {}
        b = cfg.budget_seconds.get(cell.dataset)
        cells_rows.append({
            **base, "status": "done" if last.get("queries", 0) >= cfg.queries(cell.dataset) else
            "incomplete", "queries": last.get("queries", 0),
            "test_at_query_budget": last.get("incumbent_test"),
            "best_test_evaluated": last.get("best_test_evaluated"),
            "train_seconds": last.get("train_seconds"), "proxy_seconds": last.get("proxy_seconds"),
            "proxy_evals": last.get("proxy_evals"),
            "budget_seconds": b,
            "test_at_seconds_budget": _at(curve, "seconds", b) if b else None,
            "test_at_seconds_budget_paper": _at(curve, "train_seconds", b) if b else None,
            "reached_seconds_budget": (last.get("seconds", 0.0) >= b) if b else None,
        })
    files = {}
    write_csv(out / "cells.csv", cells_rows)
    files["cells.csv"] = out / "cells.csv"
    summary, tests = _summarise(cfg, cells_rows)
    write_csv(out / "summary.csv", summary)
    files["summary.csv"] = out / "summary.csv"
    if tests:
        write_csv(out / "paired_tests.csv", tests)
        files["paired_tests.csv"] = out / "paired_tests.csv"
    (out / "summary.md").write_text(_markdown(cfg, summary, tests, cells_rows, cost.missing))
    files["summary.md"] = out / "summary.md"
    for ds in cfg.datasets:
        path = out / f"curves_{ds}.png"
        if _plot(cfg, ds, curves, path):
            files[path.name] = path
        if len(cfg.algorithms) > 1:
            for a in cfg.algorithms:
                path = out / f"curves_{ds}_{a.name}.png"
                if _plot(cfg, ds, curves, path, only=a.name):
                    files[path.name] = path
    return summary, files


def _summarise(cfg: CompareConfig, cells_rows: list[dict[str, Any]]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Mean ± std per dataset x algorithm x mode, and each assisted mode paired over seeds
    with its algorithm's vanilla mode (or with the vanilla mode of ``baseline``)."""
    summary, tests = [], []
    metrics = ["test_at_query_budget"]
    if cfg.budget_seconds:
        metrics += ["test_at_seconds_budget", "test_at_seconds_budget_paper"]
    for ds in cfg.datasets:
        done_by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
        for a in cfg.algorithms:
            for m in cfg.modes_of(a):
                rows = [r for r in cells_rows if r["dataset"] == ds
                        and r["algorithm_name"] == a.name and r["mode_name"] == m.name]
                # only runs that used the whole query budget enter the statistics
                done = [r for r in rows if r["status"] == "done"]
                done_by[(a.name, m.name)] = {r["seed"]: r for r in done}
                skipped = [r for r in rows if r["status"].startswith("skipped")]
                entry: dict[str, Any] = {
                    "dataset": ds, "algorithm": a.label, "backend": a.backend, "mode": m.label,
                    "seeds": len(done), "status": skipped[0]["status"] if skipped and not done
                    else ("done" if len(done) == len(rows) else
                          f"{len(rows) - len(done)} of {len(rows)} seeds not finished"),
                }
                for key in metrics + ["best_test_evaluated", "train_seconds", "proxy_seconds"]:
                    entry[f"{key}_mean"], entry[f"{key}_std"] = mean_std(r.get(key) for r in done)
                summary.append(entry)
        for a in cfg.algorithms:
            vanilla = _vanilla(cfg, a)
            if vanilla is None:
                continue
            ref_algo, ref_mode = vanilla
            van = done_by.get((ref_algo.name, ref_mode.name), {})
            for m in cfg.modes_of(a):
                if not m.assisted:
                    continue
                ass = done_by[(a.name, m.name)]
                common = sorted(set(van) & set(ass))
                for key in metrics:
                    pairs = [(ass[s][key], van[s][key]) for s in common
                             if ass[s].get(key) is not None and van[s].get(key) is not None]
                    t = paired_test([p[0] for p in pairs], [p[1] for p in pairs],
                                    n_boot=cfg.bootstrap)
                    vs = "vanilla" if ref_algo is a else f"{ref_algo.label} {ref_mode.label}"
                    tests.append({"dataset": ds, "algorithm": a.label, "mode": m.label,
                                  "vs": vs, "metric": key, **t})
    _add_holm(tests)
    return summary, tests


def _add_holm(tests: list[dict[str, Any]]) -> None:
    """``holm_p``: each test's Wilcoxon p adjusted (Holm) over the assisted modes of the same
    algorithm, dataset, baseline and budget: choosing the best of several modes afterwards is
    a multiple comparison."""
    families: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for t in tests:
        families.setdefault((t["dataset"], t["algorithm"], t["vs"], t["metric"]), []).append(t)
    for family in families.values():
        for t, adjusted in zip(family, holm([t["wilcoxon_p"] for t in family])):
            t["holm_p"] = adjusted


def _vanilla(cfg: CompareConfig, a: Any) -> tuple[Any, Any] | None:
    """(algorithm, mode) an assisted mode of ``a`` is compared with."""
    for m in cfg.modes_of(a):
        if not m.assisted:
            return a, m
    if a.baseline is not None:
        base = next(x for x in cfg.algorithms if x.name == a.baseline)
        for m in cfg.modes_of(base):
            if not m.assisted:
                return base, m
    return None


def _markdown(cfg: CompareConfig, summary: list[dict[str, Any]], tests: list[dict[str, Any]],
              cells_rows: list[dict[str, Any]], missing: int) -> str:
    used = {m.name: m for a in cfg.algorithms for m in cfg.modes_of(a)}
    proxies = sorted({p for m in used.values() for p in m.proxies})
    secs = bool(cfg.budget_seconds)
    budget = (f"{cfg.budget_queries}" if isinstance(cfg.budget_queries, int) else
              ", ".join(f"{k} {v}" for k, v in cfg.budget_queries.items()))
    lines = [
        f"# {cfg.name}: proxy-assisted vs vanilla search on {cfg.benchmark}", "",
        f"Storage `{redact(cfg.storage)}`. Search metric `{cfg.search_metric}`; reported: "
        f"`{cfg.metric}` accuracy (%) of the incumbent (the best trial by the search metric), "
        f"mean ± std over seeds {cfg.seeds[0]}..{cfg.seeds[-1]} ({len(cfg.seeds)} seeds). "
        f"Budget: {budget} benchmark queries per run"
        + (", and simulated seconds " + ", ".join(f"{k} {v:,.0f} s" for k, v in
                                                  cfg.budget_seconds.items()) if secs else "")
        + ".", "",
    ]
    if proxies:
        width = (f"a {cfg.proxy_num_classes}-class classifier for every target (one score per "
                 f"architecture)" if cfg.proxy_num_classes else
                 "the classifier width of the target (10 / 100 / 120 classes)")
        lines += [
            f"Pre-selection modes: each query is the proxy argmax of {cfg.n_candidates} "
            f"candidates (unless the mode sets n_candidates); warm-up modes enqueue the proxy's "
            f"top of a random pool first; native modes are zcnas samplers that use the proxies "
            f"themselves (proxies: {', '.join(proxies)}; weights initialised with seed "
            f"{cfg.proxy_init_seed}). The proxies saw the shared CIFAR-10 sample "
            f"({cfg.data['source']}, batch {cfg.data['batch_size']}, data seed "
            f"{cfg.data['seed']}) for every target dataset, with {width}. Proxy time is "
            f"measured compute seconds on this machine's device ({cfg.device}), charged once per "
            f"architecture per run (a warm-up or RoBoT pool in full, before the first query); "
            f"the training time of a query is the simulated GPU time of the benchmark cost "
            f"model. An evaluator's one-time setup (a supernet's training CPU seconds) is "
            f"charged once per run, before its first query.", ""]
    head = "| dataset | algorithm | mode | seeds | test @ queries |"
    sep = "|---|---|---|---|---|"
    if secs:
        head += " test @ seconds (train + proxy) | test @ seconds (paper: proxy free) |"
        sep += "---|---|"
    head += " best test evaluated | train s | proxy s |"
    sep += "---|---|---|"
    lines += ["## Best-found test accuracy", "", head, sep]
    for r in summary:
        if r["status"].startswith("skipped"):
            n = 6 + (2 if secs else 0)
            lines.append(f"| {r['dataset']} | {r['algorithm']} | {r['mode']} | "
                         f"{r['status']} |" + " |" * (n - 2))
            continue

        def ms(key: str, digits: int = 2, r: dict[str, Any] = r) -> str:
            mu, sd = r[f"{key}_mean"], r[f"{key}_std"]
            return "-" if mu is None else f"{mu:.{digits}f} ± {sd:.{digits}f}"

        line = (f"| {r['dataset']} | {r['algorithm']} | {r['mode']} | {r['seeds']} | "
                f"{ms('test_at_query_budget')} |")
        if secs:
            line += f" {ms('test_at_seconds_budget')} | {ms('test_at_seconds_budget_paper')} |"
        line += (f" {ms('best_test_evaluated')} | {ms('train_seconds', 0)} | "
                 f"{ms('proxy_seconds', 1)} |")
        lines.append(line)
    if tests:
        lines += ["", "## Assisted minus vanilla (paired over seeds)", "",
                  "Mean difference of the incumbent's test accuracy (percentage points), its 95% "
                  "paired-bootstrap interval (seeds resampled) and the two-sided Wilcoxon "
                  "signed-rank p-value (zero differences dropped); Holm p adjusts it over the "
                  "assisted modes of the same algorithm, dataset and budget.", "",
                  "| dataset | algorithm | mode | vs | budget | pairs | mean diff | 95% CI | "
                  "Wilcoxon p | Holm p |", "|---|---|---|---|---|---|---|---|---|---|"]
        names = {"test_at_query_budget": "queries", "test_at_seconds_budget": "seconds (honest)",
                 "test_at_seconds_budget_paper": "seconds (proxy free)"}
        for t in tests:
            ci = "-" if t["ci_low"] is None else f"[{t['ci_low']:+.2f}, {t['ci_high']:+.2f}]"
            md = "-" if t["mean_diff"] is None else f"{t['mean_diff']:+.2f}"
            lines.append(f"| {t['dataset']} | {t['algorithm']} | {t['mode']} | {t['vs']} | "
                         f"{names[t['metric']]} | {t['n']} | {md} | {ci} | "
                         f"{fmt(t['wilcoxon_p'], 3)} | {fmt(t['holm_p'], 3)} |")
    if secs:
        short = [r for r in cells_rows if r.get("reached_seconds_budget") is False]
        lines += ["", f"Runs whose {budget} queries ended before the seconds budget "
                      f"(their incumbent at the end is used): {len(short)} of "
                      f"{sum(1 for r in cells_rows if r.get('queries'))}."]
    skipped = sorted({r["status"] for r in cells_rows if r["status"].startswith("skipped")})
    if skipped:
        lines += ["", "Skipped: " + "; ".join(s[9:] for s in skipped)]
    if missing:
        lines += ["", f"Warning: {missing} proxy scores were not in the cache; their time is "
                      f"not charged."]
    lines.append("")
    return "\n".join(lines)


def _plot(cfg: CompareConfig, ds: str, curves: dict[tuple[str, str, str], list],
          path: Path, only: str | None = None) -> bool:
    modes = {m.name: m for a in cfg.algorithms for m in cfg.modes_of(a)}
    labels = {a.name: a.label for a in cfg.algorithms} | {n: m.label for n, m in modes.items()}
    algo_index = {a.name: i for i, a in enumerate(cfg.algorithms)}
    mode_index = {n: i for i, n in enumerate(modes)}
    groups = [CurveGroup(f"{labels[a]} {labels[m]}", algo_index[a] if only is None else
                         mode_index[m], mode_index[m] if only is None else 0, cs)
              for (d, a, m), cs in curves.items() if d == ds and only in (None, a)]
    return anytime_curves(path, groups, budget_queries=cfg.queries(ds),
                          budget_seconds=cfg.budget_seconds.get(ds),
                          ylabel=f"{cfg.metric} accuracy of incumbent (%)",
                          title=f"{cfg.name} on {ds}: mean best-so-far ± s.e. over seeds")
