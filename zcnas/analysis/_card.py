"""The evaluation card of a ranking method: more than one correlation number.

Per method and ground-truth column: Spearman rho, Kendall tau, nDCG@k, top-k regret and Kendall
tau controlled for parameter count and FLOPs (partial correlation), each with a percentile
bootstrap interval over the cells. A proxy that is mostly a size counter keeps its plain tau and
loses its partial tau; one that finds the best cells has a small top-k regret even with a modest
tau.

Definitions (``x``: the method's scores oriented so that higher is better, ``y``: true accuracy):

* ``ndcg@k``: DCG of the method's top-k, ``sum_i g(y_i) / log2(i + 1)``, over the DCG of the
  true top-k, with gain ``g(y) = (y - min y) / (max y - min y)`` within the evaluated cells.
* ``regret@k``: ``max y`` over all cells minus ``max y`` over the method's top-k (accuracy
  points; 0 when its top-k contains the best cell).
* ``kendall_partial``: Kendall's partial tau of x and y given z1 = params and z2 = FLOPs,
  ``tau_xy.z = (tau_xy - tau_xz tau_yz) / sqrt((1 - tau_xz^2)(1 - tau_yz^2))`` applied for z1,
  then for z2 on the z1-partialled taus.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any
import warnings

import numpy as np
from scipy import stats


TOP_K = (1, 10, 50)


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.kendalltau(a, b).statistic)


def partial_tau(x: np.ndarray, y: np.ndarray, controls: Sequence[np.ndarray]) -> float:
    """Kendall's partial tau of ``x`` and ``y`` given each of ``controls`` in turn (a control
    that orders the cells exactly like an earlier one adds nothing and is skipped)."""
    kept: list[np.ndarray] = []
    for c in controls:
        if all(abs(_tau(c, k)) < 0.999 for k in kept):
            kept.append(c)
    controls = kept
    names = ["x", "y", *[f"z{i}" for i in range(len(controls))]]
    data = dict(zip(names, [x, y, *controls]))
    tau = {(a, b): _tau(data[a], data[b]) for a in names for b in names if a < b}

    def t(a: str, b: str) -> float:
        return tau[(a, b) if a < b else (b, a)]

    remaining = list(names)
    for z in names[2:]:
        remaining.remove(z)
        new = {}
        for i, a in enumerate(remaining):
            for b in remaining[i + 1:]:
                den = math.sqrt(max(0.0, (1 - t(a, z) ** 2) * (1 - t(b, z) ** 2)))
                # a variable that a control orders (almost) exactly has no partial tau: a
                # rounding-error denominator would give |tau| > 1
                new[(a, b) if a < b else (b, a)] = (t(a, b) - t(a, z) * t(b, z)) / den \
                    if den > 1e-6 else float("nan")
        tau.update(new)
    return t("x", "y")


def ndcg_at(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """nDCG@k of the ranking by ``x`` against gains from ``y`` (see the module docstring)."""
    k = min(k, len(y))
    span = float(y.max() - y.min())
    gain = (y - y.min()) / span if span > 0 else np.ones_like(y)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(np.sum(gain[np.argsort(-x, kind="stable")[:k]] * discount))
    ideal = float(np.sum(np.sort(gain)[::-1][:k] * discount))
    return dcg / ideal if ideal > 0 else float("nan")


def regret_at(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Best ``y`` minus the best ``y`` among the top-k by ``x``."""
    k = min(k, len(y))
    return float(y.max() - y[np.argsort(-x, kind="stable")[:k]].max())


@dataclass(frozen=True)
class CardRow:
    """One method on one ground-truth column: each metric's value and 95% interval."""

    method: str
    dataset: str
    n: int
    values: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "dataset": self.dataset, "n": self.n}
        for name, v in self.values.items():
            lo, hi = self.intervals[name]
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = v, lo, hi
        return out


def _metrics(x: np.ndarray, y: np.ndarray, controls: Sequence[np.ndarray],
             top_k: Sequence[int]) -> dict[str, float]:
    out = {"spearman": float(stats.spearmanr(x, y).statistic), "kendall": _tau(x, y)}
    if controls:
        out["kendall_partial"] = partial_tau(x, y, controls)
    for k in top_k:
        out[f"ndcg@{k}"] = ndcg_at(x, y, k)
        out[f"regret@{k}"] = regret_at(x, y, k)
    return out


def card_row(method: str, dataset: str, scores: np.ndarray, truth: np.ndarray, *,
             direction: str = "maximize", controls: Sequence[np.ndarray] = (),
             top_k: Sequence[int] = TOP_K, n_bootstrap: int = 200, seed: int = 0) -> CardRow:
    """The card of one method: cells where the score, the truth and every control are finite."""
    x = np.asarray(scores, float)
    y = np.asarray(truth, float)
    zs = [np.asarray(z, float) for z in controls]
    ok = np.isfinite(x) & np.isfinite(y)
    for z in zs:
        ok &= np.isfinite(z)
    x, y, zs = x[ok], y[ok], [z[ok] for z in zs]
    if direction == "minimize":
        x = -x
    n = len(x)
    if n < 3:
        return CardRow(method, dataset, n, {}, {})
    values = _metrics(x, y, zs, top_k)
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {k: [] for k in values}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(n_bootstrap):
            idx = rng.integers(0, n, n)
            for name, v in _metrics(x[idx], y[idx], [z[idx] for z in zs], top_k).items():
                boots[name].append(v)
    intervals = {name: (float(np.nanpercentile(b, 2.5)), float(np.nanpercentile(b, 97.5)))
                 for name, b in boots.items()}
    return CardRow(method, dataset, n, values, intervals)


def format_card(rows: Sequence[CardRow]) -> str:
    """A Markdown table of the card (value [95% interval] per metric)."""
    if not rows:
        return ""
    names = [k for k in rows[0].values]
    head = "| method | dataset | n | " + " | ".join(names) + " |"
    lines = [head, "|" + "---|" * (3 + len(names))]
    for r in rows:
        cells = []
        for name in names:
            if name not in r.values:
                cells.append("-")
                continue
            lo, hi = r.intervals[name]
            cells.append(f"{r.values[name]:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append(f"| {r.method} | {r.dataset} | {r.n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
