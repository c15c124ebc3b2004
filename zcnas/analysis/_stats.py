"""The statistics of zcnas in one module: rank correlation of scores with ground truth and
paired differences between proxies (bootstrap intervals), paired tests over search seeds
and their multiple-comparison (Holm) adjustment."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
import statistics
from typing import Any
import warnings

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman rho and Kendall tau (tau-b) with percentile bootstrap intervals (95% default)."""

    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]

    def as_dict(self) -> dict[str, float]:
        return {
            "n": self.n, "spearman": self.spearman, "spearman_lo": self.spearman_ci[0],
            "spearman_hi": self.spearman_ci[1], "kendall": self.kendall,
            "kendall_lo": self.kendall_ci[0], "kendall_hi": self.kendall_ci[1],
        }


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y).statistic)


def rank_correlation(scores: np.ndarray, truth: np.ndarray, *, n_bootstrap: int = 1000,
                     confidence: float = 0.95, seed: int = 0,
                     direction: str = "maximize") -> RankCorrelation:
    """Correlation between ``scores`` and ``truth`` (NaN pairs dropped).

    For a ``"minimize"`` proxy the scores are negated first, so a good proxy has positive rho.
    The intervals resample (score, truth) pairs with replacement ``n_bootstrap`` times.
    """
    x = np.asarray(scores, dtype=float)
    y = np.asarray(truth, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if direction == "minimize":
        x = -x
    n = len(x)
    if n < 3:
        nan = float("nan")
        return RankCorrelation(n, nan, (nan, nan), nan, (nan, nan))
    rho, tau = _spearman(x, y), _kendall(x, y)
    rng = np.random.default_rng(seed)
    rhos, taus = np.empty(n_bootstrap), np.empty(n_bootstrap)
    with warnings.catch_warnings():  # a resample may be constant: its rho is NaN, skipped
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for b in range(n_bootstrap):
            idx = rng.integers(0, n, n)
            rhos[b], taus[b] = _spearman(x[idx], y[idx]), _kendall(x[idx], y[idx])
    alpha = (1 - confidence) / 2
    q = (100 * alpha, 100 * (1 - alpha))
    return RankCorrelation(
        n, rho, tuple(np.nanpercentile(rhos, q)), tau, tuple(np.nanpercentile(taus, q))
    )


@dataclass(frozen=True)
class PairedDifference:
    """Kendall tau and Spearman rho of proxy ``a`` minus those of ``b`` on the same cells, with
    paired bootstrap intervals (both proxies resampled with the same cells)."""

    a: str
    b: str
    n: int
    kendall: float
    kendall_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]

    @property
    def significant(self) -> bool:
        """True when the whole tau interval lies above zero."""
        return self.kendall_ci[0] > 0


def paired_difference(a: np.ndarray, b: np.ndarray, truth: np.ndarray, *, names=("a", "b"),
                      n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
                      directions=("maximize", "maximize")) -> PairedDifference:
    """How much better ``a`` ranks than ``b`` (rows where both and the truth are finite)."""
    xa, xb, y = (np.asarray(v, dtype=float) for v in (a, b, truth))
    keep = np.isfinite(xa) & np.isfinite(xb) & np.isfinite(y)
    xa, xb, y = xa[keep], xb[keep], y[keep]
    xa = -xa if directions[0] == "minimize" else xa
    xb = -xb if directions[1] == "minimize" else xb
    n = len(y)
    dk = _kendall(xa, y) - _kendall(xb, y)
    ds = _spearman(xa, y) - _spearman(xb, y)
    rng = np.random.default_rng(seed)
    ks, ss = np.empty(n_bootstrap), np.empty(n_bootstrap)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for i in range(n_bootstrap):
            idx = rng.integers(0, n, n)
            ks[i] = _kendall(xa[idx], y[idx]) - _kendall(xb[idx], y[idx])
            ss[i] = _spearman(xa[idx], y[idx]) - _spearman(xb[idx], y[idx])
    alpha = (1 - confidence) / 2
    q = (100 * alpha, 100 * (1 - alpha))
    return PairedDifference(names[0], names[1], n, dk, tuple(np.nanpercentile(ks, q)), ds,
                            tuple(np.nanpercentile(ss, q)))


def paired_test(assisted: Sequence[float], vanilla: Sequence[float], *, n_boot: int = 10_000,
                seed: int = 0) -> dict[str, Any]:
    """Paired over seeds: mean difference, its 95% paired-bootstrap CI (seeds resampled) and the
    two-sided Wilcoxon signed-rank p-value (zeros dropped; 1.0 if every difference is 0)."""
    d = np.asarray(assisted, float) - np.asarray(vanilla, float)
    if len(d) == 0:
        return {"n": 0, "mean_diff": None, "ci_low": None, "ci_high": None, "wilcoxon_p": None}
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
    if np.all(d == 0):
        p: float | None = 1.0
    elif len(d) < 2:
        p = None
    else:
        p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return {"n": int(len(d)), "mean_diff": float(d.mean()), "ci_low": lo, "ci_high": hi,
            "wilcoxon_p": p}


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values of one family of tests, in the input order: the i-th
    smallest of the m given p-values times (m - i + 1), made monotone, capped at 1. ``None``
    (a test that could not run) stays ``None`` and does not count in m."""
    given = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(given)):
        running = max(running, min(1.0, (len(given) - rank) * p))
        adjusted[i] = running
    return adjusted


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the non-None values (std 0 for one value;
    (None, None) for none)."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None, None
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)
