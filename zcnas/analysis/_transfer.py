"""Label-free ensembles whose members are chosen on *other* benchmarks (issue 14's protocol).

A *task* is one ground-truth column of one space's ``zcnas correlate`` output (``scores.csv``):
NB101's CIFAR-10 accuracy, each of TransNAS-Bench-101's seven tasks, ... The ensemble of a
member set is the unweighted sum of the members' log rank quantiles within the evaluated
cells (:func:`zcnas.ensembles.rank_features`), so it needs no labels and no weights. For a
target space, the member set is the one with the best mean Kendall tau over the *other*
spaces (each space weighs the same, however many tasks it has): no accuracy of the target is
read before its tau is reported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from dataclasses import field
from itertools import combinations
from pathlib import Path

import numpy as np
from scipy import stats

from zcnas.ensembles import rank_features
from zcnas.exceptions import ZcnasError


@dataclass
class SpaceScores:
    """One space's evaluated cells: ground truth per task and raw scores per proxy."""

    name: str
    truth: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    directions: dict[str, str] = field(default_factory=dict)

    def tau(self, members: tuple[str, ...], task: str) -> float:
        """Kendall tau of the members' rank-sum with ``task`` (cells any member failed on and
        cells without ground truth are left out)."""
        cols = np.stack([self.scores[m] for m in members], axis=1)
        feats = rank_features(cols, [self.directions.get(m, "maximize") for m in members])
        total = feats.sum(axis=1)
        ok = np.isfinite(total) & np.isfinite(self.truth[task])
        return float(stats.kendalltau(total[ok], self.truth[task][ok]).statistic)

    def mean_tau(self, members: tuple[str, ...]) -> float:
        """The members' tau averaged over this space's tasks."""
        return float(np.mean([self.tau(members, t) for t in self.truth]))


def read_correlate_dir(path: str | Path, name: str | None = None, *,
                       min_scored: float = 0.6) -> SpaceScores:
    """A ``zcnas correlate`` output folder as :class:`SpaceScores`: truth columns are those the
    ``summary.csv`` names as datasets, proxies those it names as methods (``ref:`` rows, the
    benchmark's precomputed scores, and members scored on under ``min_scored`` of the cells are
    dropped); directions come from the proxy registry."""
    from zcnas.scoring import resolve

    path = Path(path)
    if not (path / "scores.csv").exists() or not (path / "summary.csv").exists():
        raise ZcnasError(f"{path} has no scores.csv and summary.csv; pass a `zcnas correlate "
                         f"--out` folder")
    with (path / "summary.csv").open(newline="") as f:
        summary = list(csv.DictReader(f))
    with (path / "scores.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    datasets = list(dict.fromkeys(r["dataset"] for r in summary))
    methods = list(dict.fromkeys(r["proxy"] for r in summary if not r["proxy"].startswith("ref:")
                                 and "@" not in r["proxy"]))

    def column(col: str) -> np.ndarray:
        return np.array([float(r[col]) if r[col] not in ("", "nan") else np.nan for r in rows])

    header = list(rows[0]) if rows else []
    truth = {}
    for ds in datasets:
        matches = [c for c in header if f"_{ds}_" in c and c not in methods
                   and not c.startswith("ref:")]
        if len(matches) != 1:
            raise ZcnasError(f"{path}/scores.csv: no single ground-truth column for {ds!r}")
        truth[ds] = column(matches[0])
    scores = {m: column(m) for m in methods if m in header}
    scores = {m: v for m, v in scores.items() if np.isfinite(v).mean() >= min_scored}
    directions: dict[str, str] = {m: str(resolve(m).direction) for m in scores}
    return SpaceScores(name or path.name, truth, scores, directions)


def candidate_members(spaces: list[SpaceScores]) -> list[str]:
    """The proxies every space has scored (in the first space's order)."""
    common = set.intersection(*(set(s.scores) for s in spaces))
    return [m for m in spaces[0].scores if m in common]


def select_members(spaces: list[SpaceScores], candidates: list[str], *,
                   max_size: int = 4) -> tuple[tuple[str, ...], float]:
    """The member set (1 to ``max_size`` of ``candidates``, searched exhaustively) with the
    best mean over ``spaces`` of each space's mean tau, and that mean."""
    if not spaces:
        raise ZcnasError("choosing members needs at least one other space with ground truth")
    best: tuple[tuple[str, ...], float] = ((), -np.inf)
    for k in range(1, min(max_size, len(candidates)) + 1):
        for members in combinations(candidates, k):
            value = float(np.mean([s.mean_tau(members) for s in spaces]))
            if value > best[1]:
                best = (members, value)
    return best


@dataclass(frozen=True)
class TransferRow:
    """One target task: the ensemble and the single proxy chosen on the other spaces (both
    label-free for the target), and the target's best single proxy (chosen on the target's
    own labels: an oracle, for comparison only)."""

    space: str
    task: str
    members: tuple[str, ...]
    chosen_on: tuple[str, ...]
    ensemble_tau: float
    single: str
    single_tau: float
    best_single: str
    best_single_tau: float


def transfer(spaces: list[SpaceScores], *, max_size: int = 4) -> list[TransferRow]:
    """Leave one space out: for each space, members chosen on all the others (candidates: the
    proxies every space scored), then its tau on each of the held-out space's tasks."""
    candidates = candidate_members(spaces)
    rows = []
    for target in spaces:
        others = [s for s in spaces if s is not target]
        members, _ = select_members(others, candidates, max_size=max_size)
        (single,), _ = select_members(others, candidates, max_size=1)
        for task in target.truth:
            singles = {m: target.tau((m,), task) for m in candidates}
            best = max(singles, key=lambda m: singles[m])
            rows.append(TransferRow(target.name, task, members, tuple(s.name for s in others),
                                    target.tau(members, task), single, singles[single], best,
                                    singles[best]))
    return rows
