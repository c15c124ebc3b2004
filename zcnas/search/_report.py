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
import csv
from dataclasses import dataclass
import math
from pathlib import Path
import re
import statistics
from typing import Any
import warnings

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from zcnas.benchmarks import Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import ZcnasError
from zcnas.integration._storage import make_storage
from zcnas.integration._storage import retried_numbers
from zcnas.storage import redact


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 0.0


@dataclass
class _Truth:
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
               metric: str | None) -> _Truth:
    obj = (study.user_attrs.get("zcnas_config") or {}).get("objective", {})
    name = benchmark or obj.get("benchmark")
    bench = get_benchmark(name, **(obj.get("benchmark_params") or {})) if name else None
    return _Truth(bench, dataset or obj.get("dataset") or "cifar10",
                  metric or obj.get("metric") or "test")


def trial_rows(study: optuna.Study, truth: _Truth) -> list[dict[str, Any]]:
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
                incumbent is None or (t.value > incumbent.value) == maximize
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


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _budget_plot(path: Path, curves: dict[str, list[dict[str, Any]]], title: str) -> bool:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    drawn = False
    for label, rows in curves.items():
        pts = [r for r in rows if r["incumbent_true"] is not None]
        if not pts:
            continue
        drawn = True
        ax1.step([r["cum_queries"] for r in pts], [r["incumbent_true"] for r in pts], where="post",
                 label=label)
        ax2.step([r["cum_seconds"] for r in pts], [r["incumbent_true"] for r in pts], where="post",
                 label=f"{label} (train + proxy)")
        if any(r["cum_proxy_seconds"] > 0 for r in pts) and any(r["cum_train_seconds"] > 0 for r in pts):
            ax2.step([r["cum_train_seconds"] for r in pts], [r["incumbent_true"] for r in pts],
                     where="post", linestyle="--", label=f"{label} (train only, paper convention)")
    if not drawn:
        plt.close(fig)
        return False
    ax1.set_xlabel("benchmark queries (trials)")
    ax2.set_xlabel("seconds (simulated training + proxy compute)")
    for ax in (ax1, ax2):
        ax.set_ylabel("true accuracy of incumbent (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _optuna_plot(path: Path, study: optuna.Study) -> bool:
    plt = _plt()
    from optuna.visualization import matplotlib as ovm

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(study.directions) == 1:
            ax = ovm.plot_optimization_history(study)
        else:
            ax = ovm.plot_pareto_front(study)
    fig = ax.figure if hasattr(ax, "figure") else plt.gcf()
    fig.set_size_inches(7, 4.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _group(name: str) -> str:
    return re.sub(r"-seed\d+$", "", name)


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def report(storage: str, study_names: str | Sequence[str], out_dir: str | Path = "zcnas_out", *,
           benchmark: str | None = None, dataset: str | None = None,
           metric: str | None = None) -> dict[str, Path]:
    """Write plots and summaries of ``study_names`` (one name or several) into ``out_dir``.

    The true accuracy of a trial is its ``report_value`` (benchmark studies) or, for proxy
    studies, ``benchmark`` queried with ``dataset``/``metric`` (default: the study file's
    ``[objective]`` benchmark, dataset and metric). Returns the written files by name.
    """
    names = [study_names] if isinstance(study_names, str) else list(study_names)
    if not names:
        raise ZcnasError("report needs at least one study name (--study NAME)")
    url = make_url(storage)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).expanduser().is_file():
        raise ZcnasError(f"no database file at {url.database}; check --storage "
                         f"(a report never creates a database)")
    rdb = make_storage(storage, heartbeat_interval=None)
    known = set(optuna.get_all_study_names(storage=rdb))
    missing = [n for n in names if n not in known]
    if missing:
        raise ZcnasError(f"no study {', '.join(map(repr, missing))} in {redact(storage)}; it has: "
                         f"{', '.join(sorted(known)) or 'none'}")
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
        _write_csv(out / f"{base}_trials.csv", rows)
        written[f"{base}_trials.csv"] = out / f"{base}_trials.csv"
        kind = "history" if len(study.directions) == 1 else "pareto"
        if _optuna_plot(out / f"{base}_{kind}.png", study):
            written[f"{base}_{kind}.png"] = out / f"{base}_{kind}.png"
        if _budget_plot(out / f"{base}_budget.png", {name: rows}, f"{name}: best-so-far true accuracy"):
            written[f"{base}_budget.png"] = out / f"{base}_budget.png"
        cfg = study.user_attrs.get("zcnas_config") or {}
        obj = cfg.get("objective", {})
        states = [r["state"] for r in rows]
        last = rows[-1] if rows else {}
        best_value = best_arch = None
        if len(study.directions) == 1 and "COMPLETE" in states:
            best_value, best_arch = study.best_value, study.best_trial.user_attrs.get("arch_key")
        summary.append({
            "study": name, "kind": obj.get("kind", "?"),
            "objective": obj.get("proxy") or obj.get("search_metric") or obj.get("metric") or "?",
            "assist": (cfg.get("assist") or {}).get("mode", "none"),
            "sampler": (cfg.get("sampler") or {}).get("name", "?"),
            "directions": ",".join(d.name.lower() for d in study.directions),
            "finished": last.get("cum_queries", 0), "complete": states.count("COMPLETE"),
            "failed": states.count("FAIL"), "best_value": best_value, "best_arch": best_arch,
            "incumbent_true": last.get("incumbent_true"),
            "best_true_evaluated": last.get("best_true_evaluated"),
            "train_seconds": last.get("cum_train_seconds", 0.0),
            "proxy_seconds": last.get("cum_proxy_seconds", 0.0),
        })
    _write_csv(out / "summary.csv", summary)
    written["summary.csv"] = out / "summary.csv"
    (out / "summary.md").write_text(_markdown(summary, storage))
    written["summary.md"] = out / "summary.md"
    if len(names) > 1 and _budget_plot(out / "comparison.png", curves, "best-so-far true accuracy"):
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
            f"{r['finished']} | {r['failed']} | {_fmt(r['best_value'], 4)} | "
            f"{_fmt(r['incumbent_true'])} | {_fmt(r['best_true_evaluated'])} | "
            f"{_fmt(r['train_seconds'], 0)} | {_fmt(r['proxy_seconds'], 1)} |"
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
                xs = [r[key] for r in rs if r[key] is not None]
                if not xs:
                    return "-"
                sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
                return f"{statistics.mean(xs):.{digits}f} ± {sd:.{digits}f}"
            lines.append(f"| {g} | {len(rs)} | {ms('incumbent_true')} | "
                         f"{ms('best_true_evaluated')} | {ms('train_seconds', 0)} | "
                         f"{ms('proxy_seconds', 1)} |")
    lines.append("")
    return "\n".join(lines)
