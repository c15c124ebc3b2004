"""Training-free and label-refitted proxy searches as Optuna samplers: FreeREA (evolution on a
combination of training-free metrics) and an online ensemble whose weights are refitted on the
study's own trials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import json

import numpy as np
from optuna.study import Study
from optuna.trial import FrozenTrial

from zcnas.exceptions import ZcnasError
from zcnas.search._arch_samplers import ArchSampler
from zcnas.search._features import MemberScorer
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace


def max_normalised_sum(values: np.ndarray) -> np.ndarray:
    """FreeREA's combination: each metric divided by its largest absolute value over the
    compared set, summed over metrics (``nas_utils.return_top_k``); NaN counts as 0."""
    v = np.nan_to_num(np.asarray(values, float), nan=0.0)
    scale = np.abs(v).max(0) + 1e-9
    return (v / scale).sum(1)


@dataclass
class _Exemplar:
    arch: Arch
    key: str
    generation: int


class FreeREASampler(ArchSampler):
    """FreeREA (Cavagnero et al., WACV 2023): regularized evolution whose fitness is a
    combination of training-free metrics, with no training during the evolution.

    As the authors' ``search.py`` / ``pruning.py`` (repository ``NiccoloCavagnero/FreeREA``): an
    initial population of ``population`` random cells; each generation draws ``tournament``
    members, takes the best two by the combined metric (each metric divided by its maximum
    absolute value within the compared set, then summed), adds one random mutation of each and
    their uniform crossover, drops duplicates, then (ageing) removes the oldest member and
    keeps the best ``population`` by the metric. The paper's metrics are NASWOT, LogSynflow and
    the number of skipped layers (members ``["naswot", "logsynflow", "skip"]``); any zcnas
    proxies work. Defaults: population 100, tournament 25 (the authors' ``run_search.py``).

    The evolution (``generations`` steps; the paper stops it after 0.75 min of search on a GPU)
    runs before the first trial; then trial t queries the t-th best architecture of the whole
    evolution history by the combined metric (over the history), so trial 1 is FreeREA's
    answer as the paper reports it and later trials validate its next choices (greedy, as
    RoBoT's exploitation phase). Every architecture the evolution scored is charged.
    """

    def __init__(self, space: SearchSpace | str, *, scorer: MemberScorer,
                 population: int = 100, tournament: int = 25, generations: int = 100,
                 seed: int | None = None) -> None:
        super().__init__(space, scorer=scorer, seed=seed)
        if not 2 <= tournament <= population or generations < 0:
            raise ZcnasError(f"FreeREA needs 2 <= tournament ({tournament}) <= population "
                             f"({population}) and generations >= 0")
        self.population = population
        self.tournament = tournament
        self.generations = generations
        self.history_keys: list[str] = []
        self._order: list[Arch] | None = None

    def _crossover(self, a: Arch, b: Arch) -> Arch:
        for _ in range(100):
            child = {n: (a[n] if self._rng.random() < 0.5 else b[n]) for n in a}
            if self.space.all_valid or self.space.is_valid(child):
                return child
        return dict(a)

    def _score(self, members: Sequence[_Exemplar]) -> np.ndarray:
        assert self.scorer is not None
        return max_normalised_sum(self.scorer.values([e.arch for e in members]))

    def evolve(self) -> list[Arch]:
        """Run the evolution; returns the history, best first by the combined metric."""
        history: dict[str, _Exemplar] = {}
        pop: list[_Exemplar] = []
        for arch in self.uniform(self.population):
            e = _Exemplar(arch, self.space.key(arch), 0)
            history[e.key] = e
            pop.append(e)
        for gen in range(1, self.generations + 1):
            picks = self._rng.choice(len(pop), size=min(self.tournament, len(pop)),
                                     replace=False)
            sampled = [pop[int(i)] for i in picks]
            top = [sampled[int(i)] for i in np.argsort(-self._score(sampled),
                                                        kind="stable")[:2]]
            children = [self.space.mutate(t.arch, self._rng) for t in top]
            if len(top) == 2:
                children.append(self._crossover(top[0].arch, top[1].arch))
            members = {e.key: e for e in pop}
            for arch in children:
                key = self.space.key(arch)
                if key in history:  # a known genotype rejoins with its new generation
                    history[key].generation = gen
                else:
                    history[key] = _Exemplar(arch, key, gen)
                members[key] = history[key]
            pop = list(members.values())
            if len(pop) > self.population:
                gens = [e.generation for e in pop]
                if len(set(gens)) > 1:
                    pop.pop(int(np.argmin(gens)))
                if len(pop) > self.population:
                    keep = np.argsort(-self._score(pop), kind="stable")[:self.population]
                    pop = [pop[int(i)] for i in sorted(keep)]
        ranked = list(history.values())
        order = np.argsort(-self._score(ranked), kind="stable")
        self.history_keys = [ranked[int(i)].key for i in order]
        return [ranked[int(i)].arch for i in order]

    def propose(self, study: Study, trial: FrozenTrial) -> Arch:
        if self._order is None:
            self._order = self.evolve()
        seen = self.seen_keys(study)
        for rank, arch in enumerate(self._order):
            if self.space.key(arch) not in seen:
                self._attrs.update(freerea_rank=rank, freerea_history=len(self._order))
                return arch
        return self.space.random_arch(self._rng)  # every cell of the history was queried


class OnlineEnsembleSampler(ArchSampler):
    """Proxy pre-selection whose ensemble weights are refitted on the study's own trials.

    Each trial draws ``n_candidates`` fresh uniform architectures (never tried before) and
    queries the one with the highest ensemble score ``sum_j w_j log q_j``: q_j is the mid-rank
    quantile of member j's score among every architecture scored so far in this run (no extra
    reference pool, so no extra cost; :func:`zcnas.ensembles.log_quantile`). Before
    ``min_fit`` complete trials the weights are equal (the label-free rank ensemble); then,
    before every trial, w (non-negative, summing to 1) is refitted to maximise the Spearman
    correlation between the ensemble score and the observed values of the complete trials,
    over the simplex's vertices, its centre and ``n_weight_samples`` Dirichlet(1) draws (ties
    keep the earlier, i.e. equal weights first). This is RoBoT's idea (fit the combination on
    queried architectures) without scoring the whole space first; its only labels are the
    study's own queries. Weights are recorded per trial (``ensemble_weights``).
    """

    def __init__(self, space: SearchSpace | str, *, scorer: MemberScorer,
                 n_candidates: int = 10, min_fit: int = 5, n_weight_samples: int = 256,
                 seed: int | None = None) -> None:
        super().__init__(space, scorer=scorer, seed=seed)
        if n_candidates < 1 or min_fit < 3:
            raise ZcnasError("OnlineEnsembleSampler needs n_candidates >= 1 and min_fit >= 3")
        self.n_candidates = n_candidates
        self.min_fit = min_fit
        m = len(scorer)
        self._weight_grid = np.vstack([np.full(m, 1.0 / m), np.eye(m),
                                       self._rng.dirichlet(np.ones(m), n_weight_samples)])
        self.weights = np.full(m, 1.0 / m)

    def _log_quantiles(self, values: np.ndarray, reference: np.ndarray) -> np.ndarray:
        out = np.zeros_like(values, dtype=float)
        for j in range(values.shape[1]):
            ref = np.sort(reference[:, j][np.isfinite(reference[:, j])])
            col = values[:, j]
            below = np.searchsorted(ref, col, side="left")
            equal = np.searchsorted(ref, col, side="right") - below
            q = (below + 0.5 * equal + 0.5) / (len(ref) + 1)
            out[:, j] = np.where(np.isfinite(col), np.log(q), np.log(0.5 / (len(ref) + 1)))
        return out

    def fit(self, features: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The weights of the grid with the highest Spearman correlation to ``y``."""
        scores = features @ self._weight_grid.T  # (n, grid)
        ranks = np.argsort(np.argsort(scores, axis=0, kind="stable"), axis=0).astype(float)
        ry = np.argsort(np.argsort(y, kind="stable")).astype(float)
        ranks -= ranks.mean(0)
        ry -= ry.mean()
        denom = np.sqrt((ranks ** 2).sum(0) * (ry ** 2).sum()) + 1e-12
        rho = (ranks * ry[:, None]).sum(0) / denom
        return self._weight_grid[int(np.argmax(rho))]

    def propose(self, study: Study, trial: FrozenTrial) -> Arch:
        assert self.scorer is not None
        hist = self.history(study)
        cands = self.uniform(self.n_candidates, self.seen_keys(study))
        if not cands:
            return self.space.random_arch(self._rng)
        cand_values = self.scorer.values(cands)
        hist_values = self.scorer.values([a for a, _ in hist]) if hist else \
            np.zeros((0, len(self.scorer)))
        reference = np.vstack([v for v in self.scorer._rows.values()])
        if len(hist) >= self.min_fit:
            self.weights = self.fit(self._log_quantiles(hist_values, reference),
                                    np.array([v for _, v in hist]))
        score = self._log_quantiles(cand_values, reference) @ self.weights
        self._attrs.update(ensemble_weights=json.dumps([float(w) for w in self.weights]),
                           ensemble_members=list(self.scorer.names))
        return cands[int(np.argmax(score))]
