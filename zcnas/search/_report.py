"""Reports of studies in SQL: PNG plots and summary tables (CSV and Markdown).

For every study: ``<study>_trials.csv`` (one row per trial, with the cumulative budget and the
true accuracy of the incumbent), ``<study>_history.png`` (Optuna's optimization history) or
``<study>_pareto.png`` (multi-objective), and ``<study>_budget.png`` (best-so-far true accuracy
against benchmark queries and against seconds). Over all studies: ``summary.csv``,
``summary.md`` (with mean ± std over ``<name>-seed<N>`` groups) and, for several studies,
``comparison.png``.

Budget conventions: *queries* counts finished trials (benchmark evaluations); *seconds* is the
simulated training time (``train_seconds``) plus the proxy compute time actually spent
(``proxy_seconds``, ``prescreen_proxy_seconds`` and any warmup), the honest charge; the papers'
convention (proxy time not charged) is ``train_seconds`` alone and is plotted as well when the two
differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
import re
from typing import Any
from typing import cast

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from zcnas.benchmarks import Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import ZcnasError
from zcnas.reports import budget_curves
from zcnas.reports import fmt
from zcnas.reports import mean_pm_std
from zcnas.reports import optuna_history
from zcnas.reports import pareto_front
from zcnas.reports import write_csv
from zcnas.search._study import retried_numbers
from zcnas.search._study import study_info
from zcnas.storage import default_storage
from zcnas.storage import make_storage
from zcnas.storage import redact


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 0.0


@dataclass
class Truth:
    """Where a trial's true accuracy comes from, when it has none of its own."""

    benchmark: Benchmark | None
    dataset: str
    metric: str

    def value(self, trial: FrozenTrial) -> float | None:
        if "report_value" in trial.user_attrs:
            return _num(trial.user_attrs["report_value"])
        key = trial.user_attrs.get("arch_key")
        if self.benchmark is None or not key:
            return None
        try:
            return self.benchmark.query(key, dataset=self.dataset, metric=self.metric)
        except ZcnasError:
            return None


def _truth_for(study: optuna.Study, benchmark: str | None, dataset: str | None,
               metric: str | None) -> Truth:
    info = study_info(study)
    cfg_obj = (study.user_attrs.get("zcnas_config") or {}).get("objective", {})
    name = benchmark or info.get("benchmark")
    bench = get_benchmark(name, **(cfg_obj.get("benchmark_params") or {})) if name else None
    ds = dataset or info.get("dataset") or (bench.datasets[0] if bench else "cifar10")
    return Truth(bench, ds, metric or info.get("metric") or (bench.metrics[0] if bench else
                                                                "test"))


def _true_pareto(path: Path, study: optuna.Study, truth: Truth) -> bool:
    """For a proxy x ``bench:<metric>`` study (e.g. GradSign x edge-GPU latency): the study's
    Pareto set in (metric, true accuracy) beside the true front of every cell the benchmark
    has; False when the study has no such objective or no benchmark."""
    names = list(study.metric_names or [])
    bench_cols = [i for i, n in enumerate(names) if str(n).startswith("bench:")]
    if truth.benchmark is None or len(study.directions) < 2 or not bench_cols:
        return False
    col = bench_cols[0]
    metric = str(names[col])[6:]
    best = [t for t in study.best_trials if t.values is not None]
    if not best:
        return False
    bm, ds = truth.benchmark, truth.dataset
    xs, ys = [], []
    for key in bm.keys(ds):
        try:
            xs.append(bm.query(key, ds, metric))
            ys.append(bm.query(key, ds, truth.metric))
        except ZcnasError:
            continue
    sx = np.array([t.values[col] for t in best], float)
    sy = np.array([truth.value(t) if truth.value(t) is not None else np.nan for t in best])
    minimize_x = not bm.higher_is_better.get(metric, True)
    pareto_front(path, {"all cells (true front)": (np.array(xs), np.array(ys)),
                        f"{study.study_name} Pareto set": (sx, sy)},
                 xlabel=f"{metric} ({bm.name}, {ds})", ylabel=f"{ds} {truth.metric} accuracy (%)",
                 title=f"{study.study_name}: proxy x {metric} search vs the true front",
                 minimize_x=minimize_x)
    return True


def trial_rows(study: optuna.Study, truth: Truth) -> list[dict[str, Any]]:
    """One row per finished trial (number order) with cumulative budget and incumbent accuracy."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]
    retried = retried_numbers(trials)
    single = len(study.directions) == 1
    maximize = single and study.direction == optuna.study.StudyDirection.MAXIMIZE
    warm = study.user_attrs.get("zcnas_warmup") or {}
    queries, train_s, proxy_s = 0, 0.0, _num(warm.get("proxy_seconds"))
    incumbent: FrozenTrial | None = None
    incumbent_true: float | None = None
    oracle: float | None = None
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        a = t.user_attrs
        stale = t.number in retried
        if not stale:
            queries += 1
        train_s += _num(a.get("train_seconds"))
        proxy_s += _num(a.get("proxy_seconds")) + _num(a.get("prescreen_proxy_seconds"))
        true = truth.value(t) if t.state == TrialState.COMPLETE else None
        if true is not None:
            oracle = true if oracle is None else max(oracle, true)
        if single and t.state == TrialState.COMPLETE and t.value is not None and (
                incumbent is None or (t.value > cast(float, incumbent.value)) == maximize
                and t.value != incumbent.value):
            incumbent, incumbent_true = t, true
        rows.append({
            "number": t.number, "state": t.state.name + (" (retried)" if stale else ""),
            "values": None if t.values is None else ";".join(f"{v:.6g}" for v in t.values),
            "arch_key": a.get("arch_key"), "true_value": true,
            "search_metric": a.get("search_metric"), "fail_reason": a.get("fail_reason"),
            "seconds_wall": (t.duration.total_seconds() if t.duration else None),
            "train_seconds": a.get("train_seconds"),
            "proxy_seconds": _num(a.get("proxy_seconds")) + _num(a.get("prescreen_proxy_seconds")),
            "prescreen_n_candidates": a.get("prescreen_n_candidates"),
            "warmup_rank": a.get("warmup_rank"),
            "cum_queries": queries, "cum_train_seconds": train_s, "cum_proxy_seconds": proxy_s,
            "cum_seconds": train_s + proxy_s, "incumbent_true": incumbent_true,
            "best_true_evaluated": oracle,
        })
    return rows










def _group(name: str) -> str:
    return re.sub(r"-seed\d+$", "", name)




def report(storage: str | None = None, study_names: str | Sequence[str] | None = None,
           out_dir: str | Path = "zcnas_out", *, benchmark: str | None = None,
           dataset: str | None = None, metric: str | None = None) -> dict[str, Path]:
    """Write plots and summaries of ``study_names`` (one name or several; default: the only
    study of ``storage``) into ``out_dir``.

    The true accuracy of a trial is its ``report_value`` (benchmark studies) or, for proxy
    studies, ``benchmark`` queried with ``dataset``/``metric`` (default: what the study records
    about itself, see :func:`zcnas.search.optuna.describe_study`). Returns the written files by
    name. ``storage`` defaults to ``$ZCNAS_STORAGE`` or ``sqlite:///zcnas.db``.
    """
    storage = storage or default_storage()
    url = make_url(storage)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).expanduser().is_file():
        raise ZcnasError(f"no database file at {url.database}; check --storage "
                         f"(a report never creates a database)")
    rdb = make_storage(storage, heartbeat_interval=None)
    known = sorted(optuna.get_all_study_names(storage=rdb))
    if study_names is None:
        if len(known) != 1:
            raise ZcnasError(f"{redact(storage)} holds {len(known)} studies; name the one(s) to "
                             f"report with --study NAME: {', '.join(known) or 'none'}")
        study_names = known
    names = [study_names] if isinstance(study_names, str) else list(study_names)
    if not names:
        raise ZcnasError("report needs at least one study name (--study NAME)")
    missing = [n for n in names if n not in known]
    if missing:
        raise ZcnasError(f"no study {', '.join(map(repr, missing))} in {redact(storage)}; it "
                         f"has: {', '.join(known) or 'none'}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    summary: list[dict[str, Any]] = []
    curves: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        study = optuna.load_study(study_name=name, storage=rdb)
        truth = _truth_for(study, benchmark, dataset, metric)
        rows = trial_rows(study, truth)
        curves[name] = rows
        base = _safe(name)
        write_csv(out / f"{base}_trials.csv", rows)
        written[f"{base}_trials.csv"] = out / f"{base}_trials.csv"
        kind = "history" if len(study.directions) == 1 else "pareto"
        if optuna_history(out / f"{base}_{kind}.png", study):
            written[f"{base}_{kind}.png"] = out / f"{base}_{kind}.png"
        if _true_pareto(out / f"{base}_true_pareto.png", study, truth):
            written[f"{base}_true_pareto.png"] = out / f"{base}_true_pareto.png"
        if budget_curves(out / f"{base}_budget.png", {name: rows}, f"{name}: best-so-far true accuracy"):
            written[f"{base}_budget.png"] = out / f"{base}_budget.png"
        info = study_info(study)
        states = [r["state"] for r in rows]
        last = rows[-1] if rows else {}
        best_value = best_arch = None
        if len(study.directions) == 1 and "COMPLETE" in states:
            best_value, best_arch = study.best_value, study.best_trial.user_attrs.get("arch_key")
        summary.append({
            "study": name, "kind": info.get("kind") or "?",
            "objective": info.get("objective") or "?",
            "assist": info.get("assist") or "none", "sampler": info.get("sampler") or "?",
            "directions": ",".join(d.name.lower() for d in study.directions),
            "finished": last.get("cum_queries", 0), "complete": states.count("COMPLETE"),
            "failed": states.count("FAIL"), "best_value": best_value, "best_arch": best_arch,
            "incumbent_true": last.get("incumbent_true"),
            "best_true_evaluated": last.get("best_true_evaluated"),
            "train_seconds": last.get("cum_train_seconds", 0.0),
            "proxy_seconds": last.get("cum_proxy_seconds", 0.0),
        })
    write_csv(out / "summary.csv", summary)
    written["summary.csv"] = out / "summary.csv"
    (out / "summary.md").write_text(_markdown(summary, storage))
    written["summary.md"] = out / "summary.md"
    if len(names) > 1 and budget_curves(out / "comparison.png", curves, "best-so-far true accuracy"):
        written["comparison.png"] = out / "comparison.png"
    return written


def _markdown(summary: list[dict[str, Any]], storage: str) -> str:
    lines = [f"# zcnas report ({redact(storage)})", "",
             "| study | kind | objective | assist | sampler | finished | fail | best value | "
             "incumbent true | best true evaluated | train s | proxy s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary:
        lines.append(
            f"| {r['study']} | {r['kind']} | {r['objective']} | {r['assist']} | {r['sampler']} | "
            f"{r['finished']} | {r['failed']} | {fmt(r['best_value'], 4)} | "
            f"{fmt(r['incumbent_true'])} | {fmt(r['best_true_evaluated'])} | "
            f"{fmt(r['train_seconds'], 0)} | {fmt(r['proxy_seconds'], 1)} |"
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in summary:
        groups.setdefault(_group(r["study"]), []).append(r)
    multi = {g: rs for g, rs in groups.items() if len(rs) > 1}
    if multi:
        lines += ["", "## Over seeds (mean ± std)", "",
                  "| group | seeds | incumbent true | best true evaluated | train s | proxy s |",
                  "|---|---|---|---|---|---|"]
        for g, rs in multi.items():
            def ms(key: str, digits: int = 2, rs: list[dict[str, Any]] = rs) -> str:
                return mean_pm_std((r[key] for r in rs), digits)
            lines.append(f"| {g} | {len(rs)} | {ms('incumbent_true')} | "
                         f"{ms('best_true_evaluated')} | {ms('train_seconds', 0)} | "
                         f"{ms('proxy_seconds', 1)} |")
    lines.append("")
    return "\n".join(lines)
