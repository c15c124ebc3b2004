"""Every plot zcnas draws (matplotlib, Agg backend, imported only when a plot is drawn)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import math
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import cast
import warnings

import numpy as np


if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # keeps a legend placed beside the axes
    pyplot().close(fig)


def accuracy_limits(values: np.ndarray, pad: float = 0.5) -> tuple[float, float] | None:
    """y-limits that show the band where most architectures lie (2nd to 100th percentile), so
    a few chance-level networks do not squash the 85-94 % band that matters."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return None
    lo, hi = float(np.percentile(v, 2)), float(v.max())
    return lo - pad, hi + pad


@dataclass(frozen=True)
class ScatterPanel:
    """One proxy's panel: its scores against the truth, and the title line."""

    name: str
    scores: np.ndarray
    direction: str
    title: str


def rank_scatter(path: Path, truth: np.ndarray, panels: Sequence[ScatterPanel], *,
                 truth_label: str, title: str) -> Path:
    """Proxy rank (quantile) against the true value, one panel per proxy; points below the
    plotted band (e.g. chance-level networks) are counted in the panel's corner."""
    from scipy.stats import rankdata

    plt = pyplot()
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    limits = accuracy_limits(truth)
    for ax, panel in zip(axes.flat, panels):
        ok = np.isfinite(panel.scores) & np.isfinite(truth)
        signed = panel.scores[ok] if panel.direction != "minimize" else -panel.scores[ok]
        ax.scatter(rankdata(signed) / max(1, ok.sum()), truth[ok], s=4, alpha=0.5)
        ax.set_title(panel.title, fontsize=8)
        ax.set_xlabel(f"{panel.name} rank (quantile)")
        ax.set_ylabel(truth_label, fontsize=8)
        if limits is not None:
            ax.set_ylim(*limits)
            below = int(np.sum(truth[ok] < limits[0]))
            if below:
                ax.text(0.02, 0.02, f"{below} below", transform=ax.transAxes, fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return path


def budget_curves(path: Path, curves: Mapping[str, Sequence[Mapping[str, Any]]],
                  title: str) -> bool:
    """Best-so-far true accuracy against queries and against seconds (train + proxy, and train
    only where a proxy was charged). Rows need ``incumbent_true``, ``cum_queries``,
    ``cum_seconds``, ``cum_train_seconds`` and ``cum_proxy_seconds``; False if nothing to draw."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    drawn = False
    for label, rows in curves.items():
        pts = [r for r in rows if r["incumbent_true"] is not None]
        if not pts:
            continue
        drawn = True
        ax1.step([r["cum_queries"] for r in pts], [r["incumbent_true"] for r in pts],
                 where="post", label=label)
        ax2.step([r["cum_seconds"] for r in pts], [r["incumbent_true"] for r in pts],
                 where="post", label=f"{label} (train + proxy)")
        if any(r["cum_proxy_seconds"] > 0 for r in pts) and \
                any(r["cum_train_seconds"] > 0 for r in pts):
            ax2.step([r["cum_train_seconds"] for r in pts], [r["incumbent_true"] for r in pts],
                     where="post", linestyle="--",
                     label=f"{label} (train only, paper convention)")
    if not drawn:
        plt.close(fig)
        return False
    ax1.set_xlabel("benchmark queries (trials)")
    ax2.set_xlabel("seconds (simulated training + proxy compute)")
    if all(r["cum_seconds"] == 0 for rows in curves.values() for r in rows):
        ax2.text(0.5, 0.5, "no seconds recorded", transform=ax2.transAxes, ha="center")
    for ax in (ax1, ax2):
        ax.set_ylabel("true accuracy of incumbent (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return True


def optuna_history(path: Path, study: Any) -> bool:
    """Optuna's optimization history (one objective) or Pareto front (several), with the
    study's metric names on the axes; False if the study has no complete trial."""
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    plt = pyplot()
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(study.directions) == 1:
            ax = ovm.plot_optimization_history(study)
        else:
            ax = ovm.plot_pareto_front(study)
    # Optuna draws on a top-level figure (Axes.figure is typed Figure | SubFigure)
    fig = cast("Figure", ax.figure) if hasattr(ax, "figure") else plt.gcf()
    fig.set_size_inches(7, 4.5)
    _save(fig, path)
    return True


def pareto_front(path: Path, points: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                 xlabel: str, ylabel: str, title: str, minimize_x: bool = True) -> Path:
    """Scatter of several point sets (label -> (x, y)) with each set's Pareto front drawn as a
    step line (x minimised or maximised, y maximised). The first set is the reference (e.g.
    every cell of the space): small grey points under the others."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (label, (x, y)) in enumerate(points.items()):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        style = (dict(s=4, alpha=0.25, color="0.6", zorder=1) if i == 0
                 else dict(s=16, alpha=0.9, zorder=3))
        dots = ax.scatter(x[ok], y[ok], label=f"{label} (points)", **style)  # type: ignore[arg-type]
        fx, fy = front(x[ok], y[ok], minimize_x=minimize_x)
        ax.step(fx, fy, where="post", linewidth=1.5, zorder=2 if i == 0 else 4,
                color="0.3" if i == 0 else dots.get_facecolor()[0], label=f"{label} (front)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    _save(fig, path)
    return path


def front(x: np.ndarray, y: np.ndarray, *, minimize_x: bool = True
          ) -> tuple[np.ndarray, np.ndarray]:
    """The non-dominated points of (x, y), y maximised, sorted by x."""
    order = np.argsort(x if minimize_x else -x, kind="stable")
    fx, fy, best = [], [], -math.inf
    for i in order:
        if y[i] > best:
            best = y[i]
            fx.append(x[i])
            fy.append(y[i])
    return np.asarray(fx), np.asarray(fy)


def grid_mean(curves: Sequence[Sequence[Mapping[str, Any]]], key: str, value: str,
              grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over runs of ``value`` read as a step function of ``key`` on
    ``grid`` (defined only where every run has a value)."""
    vals = np.full((len(curves), len(grid)), np.nan)
    for i, c in enumerate(curves):
        xs = np.array([r[key] for r in c], float)
        ys = np.array([np.nan if r[value] is None else r[value] for r in c], float)
        idx = np.searchsorted(xs, grid, side="right") - 1
        ok = idx >= 0
        vals[i, ok] = ys[idx[ok]]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = ~np.isnan(vals).any(axis=0)
        mean = np.where(full, np.nanmean(vals, axis=0), np.nan)
        se = np.where(full, np.nanstd(vals, axis=0) / math.sqrt(max(len(curves), 1)), np.nan)
    return mean, se


@dataclass(frozen=True)
class CurveGroup:
    """Runs of one (algorithm, mode): their anytime curves and how to draw them."""

    label: str
    color_index: int
    style_index: int
    curves: Sequence[Sequence[Mapping[str, Any]]]


def anytime_curves(path: Path, groups: Sequence[CurveGroup], *, budget_queries: int,
                   budget_seconds: float | None, ylabel: str, title: str) -> bool:
    """Mean best-so-far ± s.e. over seeds against queries and against simulated seconds
    (training + proxy; faint: proxy time not charged), the seconds axis cut at twice the
    seconds budget; one legend beside both panels. Curve rows need ``queries``, ``seconds``,
    ``train_seconds``, ``proxy_seconds`` and ``incumbent_test``."""
    groups = [g for g in groups if g.curves]
    if not groups:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", "-.", ":"]
    qgrid = np.arange(1, budget_queries + 1, dtype=float)
    smax = max(c[-1]["seconds"] for g in groups for c in g.curves if c)
    if budget_seconds:
        smax = min(smax, 2.0 * budget_seconds)
    sgrid = np.linspace(0, smax, 300)
    faint = False
    for g in groups:
        color, style = colors[g.color_index % len(colors)], styles[g.style_index % len(styles)]
        for ax, key, grid in ((axes[0], "queries", qgrid), (axes[1], "seconds", sgrid)):
            mean, se = grid_mean(g.curves, key, "incumbent_test", grid)
            ax.plot(grid, mean, style, color=color, label=g.label)
            ax.fill_between(grid, mean - se, mean + se, color=color, alpha=0.12)
        if any(c[-1]["proxy_seconds"] > 0 for c in g.curves if c):
            mean, _ = grid_mean(g.curves, "train_seconds", "incumbent_test", sgrid)
            axes[1].plot(sgrid, mean, style, color=color, alpha=0.45, linewidth=0.9)
            faint = True
    if budget_seconds:
        axes[1].axvline(budget_seconds, color="grey", linewidth=0.8)
    axes[0].set_xlabel("benchmark queries")
    axes[1].set_xlabel("simulated seconds (training + proxy compute)"
                       + ("; faint: proxy time not charged" if faint else ""))
    axes[1].set_xlim(0, smax)
    for ax in axes:
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=6 if len(labels) > 12 else 7, frameon=False)
    lows = [r["incumbent_test"] for g in groups for c in g.curves
            for r in c[len(c) // 5:] if r["incumbent_test"] is not None]
    if lows:
        lo = float(np.percentile(lows, 2))
        for ax in axes:
            ax.set_ylim(bottom=lo)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return True


def rank_card(path: Path, truth: np.ndarray, panels: Sequence[ScatterPanel],
              regret_curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], *,
              title: str) -> Path:
    """The evaluation card's figure: proxy rank against true rank (quantiles) per method, and
    one panel of top-k regret (accuracy points) against k for every method."""
    from scipy.stats import rankdata

    plt = pyplot()
    n = len(panels) + 1
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, panel in zip(flat, panels):
        ok = np.isfinite(panel.scores) & np.isfinite(truth)
        signed = panel.scores[ok] if panel.direction != "minimize" else -panel.scores[ok]
        m = max(1, int(ok.sum()))
        ax.scatter(rankdata(signed) / m, rankdata(truth[ok]) / m, s=4, alpha=0.5)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.6)
        ax.set_title(panel.title, fontsize=8)
        ax.set_xlabel(f"{panel.name} rank (quantile)")
        ax.set_ylabel("true rank (quantile)")
        ax.grid(alpha=0.3)
    ax = flat[len(panels)]
    for name, (ks, regrets) in regret_curves.items():
        ax.plot(list(ks), list(regrets), marker=".", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("k (top-k by the method)")
    ax.set_ylabel("top-k regret (accuracy points)")
    ax.set_title("best of the top-k vs the best cell", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    for extra in flat[n:]:
        extra.axis("off")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return path
