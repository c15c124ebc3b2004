"""Proxy-assisted search that leaves the base sampler unchanged.

* :class:`ProxyPrescreenSampler` (GradSign's G- variants, zero-cost-nas "move proposal"): for each
  trial, draw ``n_candidates`` architectures, score them with the proxy, and let the trial
  evaluate only the best one.
* :func:`warmup` (zero-cost-nas "warmup"): score a random pool and enqueue the proxy's top-k as
  the study's first trials.

The proxy cost is charged honestly: every trial records the proxy seconds it spent; reports can
also show the papers' convention (proxy cost not charged).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import json
import time
from typing import Any
from typing import Literal
from typing import cast

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.scoring import Scorable
from zcnas.scoring import resolve
from zcnas.scoring import score_record
from zcnas.search._candidates import mutation_candidates
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreRecord
from zcnas.storage import set_user_attrs


Mode = Literal["preselect", "mutation"]


def _better(direction: str) -> Any:
    return (lambda a, b: a > b) if direction == "maximize" else (lambda a, b: a < b)


@dataclass
class _Scored:
    arch: Arch
    key: str
    record: ScoreRecord

    @property
    def value(self) -> float | None:
        return self.record.value if self.record.ok else None


class ProxyPrescreenSampler(BaseSampler):
    """Wrap ``base_sampler``: each trial evaluates the proxy's best of ``n_candidates`` candidates.

    Candidates:
        * ``mode="preselect"`` (GradSign's G-RS / G-BOHB): ``n_candidates`` proposals of the base
          sampler for this trial (``proposals="base"``: its ``sample_relative`` and
          ``sample_independent`` called again for each candidate; for TPE during its random
          start-up, and for ``RandomSampler``, these are uniform draws), or uniform random
          architectures (``proposals="uniform"``, exactly GradSign's RS/BOHB).
        * ``mode="mutation"`` (G-REA, zero-cost-nas move proposal): once ``population`` trials are
          complete, the parent is the best of ``tournament`` trials drawn from the last
          ``population`` complete ones (aging evolution), and the candidates are
          ``n_candidates`` distinct random single-parameter mutations of it (all neighbours if
          there are fewer). Before that, the base sampler proposes alone (no proxy; G-REA keeps a
          random initial population).

    With probability ``random_prob`` a uniformly random candidate is taken instead of the best
    (zero-cost-nas uses 0.25). Scores go through :func:`zcnas.scoring.score_record` and
    ``cache``. The base sampler is not modified: ``before_trial``, ``after_trial``,
    ``reseed_rng`` and ``sample_independent`` (parameters outside the space) are forwarded.

    Each prescreened trial gets the user attributes ``prescreen_mode, prescreen_proxy,
    prescreen_n_candidates, prescreen_n_unique, prescreen_proxy_evals`` (fresh computations),
    ``prescreen_proxy_seconds`` (their compute seconds: the honest proxy cost of the trial),
    ``prescreen_wall_seconds``, ``prescreen_score``, ``prescreen_random_pick`` and
    ``prescreen_candidates`` (JSON ``[[arch_key, score], ...]``).
    """

    def __init__(self, base_sampler: BaseSampler | None, space: SearchSpace | str,
                 proxy: Scorable | str, batch: Batch, *, n_candidates: int = 10,
                 mode: Mode = "preselect", random_prob: float = 0.0,
                 cache: ScoreCache | None = None, seed: int | None = None,
                 proposals: Literal["base", "uniform"] = "base", population: int = 20,
                 tournament: int = 5, device: str = "cpu", init_seed: int = 0) -> None:
        if mode not in ("preselect", "mutation"):
            raise ZcnasError(f"prescreen mode must be 'preselect' or 'mutation', got {mode!r}")
        if proposals not in ("base", "uniform"):
            raise ZcnasError(f"prescreen proposals must be 'base' or 'uniform', got {proposals!r}")
        if n_candidates < 1:
            raise ZcnasError(f"n_candidates must be >= 1, got {n_candidates}")
        if not 0.0 <= random_prob <= 1.0:
            raise ZcnasError(f"random_prob must be in [0, 1], got {random_prob}")
        if mode == "mutation" and not 1 <= tournament <= population:
            raise ZcnasError(f"need 1 <= tournament ({tournament}) <= population ({population})")
        if base_sampler is None:
            base_sampler = optuna.samplers.RandomSampler(seed=seed)
        self._base = base_sampler
        self.space = get_space(space) if isinstance(space, str) else space
        self.proxy = resolve(proxy) if isinstance(proxy, str) else proxy
        self.batch = batch
        self.n_candidates = n_candidates
        self.mode = mode
        self.random_prob = random_prob
        self.cache = cache
        self.seed = seed
        self.proposals = proposals
        self.population = population
        self.tournament = tournament
        self.device = device
        self.init_seed = init_seed
        self._rng = np.random.default_rng(seed)

    @property
    def base_sampler(self) -> BaseSampler:
        return self._base

    def __str__(self) -> str:
        return f"ProxyPrescreenSampler({self._base}, proxy={self.proxy.name}, mode={self.mode})"

    # --- BaseSampler API -------------------------------------------------------------------
    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self.space.distributions)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        start = time.perf_counter()
        parent: FrozenTrial | None = None
        if self.mode == "mutation":
            parent = self._parent(study)
            if parent is None:  # initial population: the base sampler alone
                arch = self._base_proposals(study, trial, 1)[0]
                set_user_attrs(study._storage, trial._trial_id, {
                    "prescreen_mode": "mutation-startup", "prescreen_proxy": self.proxy.name,
                    "prescreen_n_candidates": 1, "prescreen_n_unique": 1,
                    "prescreen_proxy_evals": 0, "prescreen_proxy_seconds": 0.0,
                    "prescreen_wall_seconds": time.perf_counter() - start,
                })
                return arch
            candidates = self._mutations(parent.params)
        elif self.proposals == "uniform":
            candidates = [self._uniform() for _ in range(self.n_candidates)]
        else:
            candidates = self._base_proposals(study, trial, self.n_candidates)
        scored = self._score_unique(candidates)
        chosen, random_pick = self._choose(scored)
        fresh = [s.record for s in scored if not s.record.cached]
        attrs: dict[str, Any] = {
            "prescreen_mode": self.mode, "prescreen_proxy": self.proxy.name,
            "prescreen_n_candidates": len(candidates), "prescreen_n_unique": len(scored),
            "prescreen_proxy_evals": len(fresh),
            "prescreen_proxy_seconds": float(sum(r.seconds for r in fresh)),
            "prescreen_wall_seconds": time.perf_counter() - start,
            "prescreen_score": chosen.value, "prescreen_random_pick": random_pick,
            "prescreen_candidates": json.dumps([[s.key, s.value] for s in scored]),
        }
        if parent is not None:
            attrs["prescreen_parent"] = parent.number
        set_user_attrs(study._storage, trial._trial_id, attrs)
        return dict(chosen.arch)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._base.reseed_rng()

    # --- candidates --------------------------------------------------------------------------
    def _uniform(self) -> Arch:
        dists = self.space.distributions
        # uniform proposals draw from categorical parameters (the cell spaces)
        cats = cast("dict[str, CategoricalDistribution]", dists)
        return {n: d.choices[int(self._rng.integers(len(d.choices)))] for n, d in cats.items()}

    def _base_proposals(self, study: Study, trial: FrozenTrial, k: int) -> list[Arch]:
        dists = self.space.distributions
        rel = self._base.infer_relative_search_space(study, trial)
        rel = {n: d for n, d in rel.items() if n in dists}
        out = []
        for _ in range(k):
            params = dict(self._base.sample_relative(study, trial, rel)) if rel else {}
            out.append({
                n: params[n] if n in params else self._base.sample_independent(study, trial, n, d)
                for n, d in dists.items()
            })
        return out

    def _parent(self, study: Study) -> FrozenTrial | None:
        if len(study.directions) != 1:
            raise ZcnasError("prescreen mode 'mutation' needs a single-objective study; "
                             "use mode 'preselect'")
        names = set(self.space.distributions)
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if names <= set(t.params)]
        if len(done) < self.population:
            return None
        done.sort(key=lambda t: t.number)
        pool = done[-self.population:]
        picks = self._rng.choice(len(pool), size=self.tournament, replace=False)
        better = _better("maximize" if study.direction == StudyDirection.MAXIMIZE else "minimize")
        best = pool[int(picks[0])]
        for i in picks[1:]:
            if better(pool[int(i)].value, best.value):
                best = pool[int(i)]
        return best

    def _mutations(self, params: Mapping[str, Any]) -> list[Arch]:
        return mutation_candidates(self.space, params, self.n_candidates, self._rng)

    # --- scoring -----------------------------------------------------------------------------
    def _score_unique(self, candidates: list[Arch]) -> list[_Scored]:
        seen: dict[str, _Scored] = {}
        for arch in candidates:
            key = self.space.key(arch)
            if key not in seen:
                rec = score_record(self.space, self.proxy, arch, self.batch, seed=self.init_seed,
                                   device=self.device, cache=self.cache)
                seen[key] = _Scored(arch, key, rec)
        return list(seen.values())

    def _choose(self, scored: list[_Scored]) -> tuple[_Scored, bool]:
        if self.random_prob > 0 and self._rng.random() < self.random_prob:
            return scored[int(self._rng.integers(len(scored)))], True
        better = _better(self.proxy.direction)
        best: _Scored | None = None
        for s in scored:
            if s.value is not None and (best is None or better(s.value, best.value)):
                best = s
        return (best if best is not None else scored[0]), False


@dataclass
class WarmupResult:
    """What :func:`warmup` enqueued and what it cost."""

    enqueued: list[str]
    scores: list[float]
    pool: int
    proxy_evals: int
    proxy_seconds: float
    failed: int = 0
    charged_seconds: float = 0.0


def warmup(study: Study, space: SearchSpace | str, proxy: Scorable | str, batch: Batch, *,
           pool: int = 1000, top_k: int = 10, seed: int = 0, cache: ScoreCache | None = None,
           device: str = "cpu", init_seed: int = 0) -> WarmupResult:
    """Score ``pool`` distinct random architectures and ``study.enqueue_trial`` the proxy's top-k.

    The enqueued trials run first (whatever the sampler) and carry the user attributes
    ``warmup_rank``, ``warmup_score``, ``warmup_pool`` and ``warmup_proxy``. The cost (``pool``
    proxy evaluations) is returned and stored as the study user attribute ``zcnas_warmup``:
    ``proxy_seconds`` counts the computations made now, ``charged_seconds`` the stored compute
    seconds of the whole pool, cached or not (the honest charge of a run).
    """
    space = get_space(space) if isinstance(space, str) else space
    proxy = resolve(proxy) if isinstance(proxy, str) else proxy
    if not 1 <= top_k <= pool:
        raise ZcnasError(f"warmup needs 1 <= top_k ({top_k}) <= pool ({pool})")
    archs = space.sample(min(pool, space.size()), seed=seed)
    records = [score_record(space, proxy, a, batch, seed=init_seed, device=device, cache=cache)
               for a in archs]
    ok = [(a, r) for a, r in zip(archs, records) if r.ok and r.value is not None]
    ok.sort(key=lambda ar: cast(float, ar[1].value), reverse=proxy.direction == "maximize")  # stable
    fresh = [r for r in records if not r.cached]
    result = WarmupResult(enqueued=[], scores=[], pool=len(archs), proxy_evals=len(fresh),
                          proxy_seconds=float(sum(r.seconds for r in fresh)),
                          failed=len(records) - len(ok),
                          charged_seconds=float(sum(r.seconds for r in records)))
    for rank, (arch, rec) in enumerate(ok[:top_k]):
        study.enqueue_trial(arch, user_attrs={
            "warmup_rank": rank, "warmup_score": rec.value, "warmup_pool": len(archs),
            "warmup_proxy": proxy.name,
        }, skip_if_exists=True)
        result.enqueued.append(rec.key.arch_key)
        result.scores.append(float(rec.value))  # type: ignore[arg-type]
    study.set_user_attr("zcnas_warmup", {
        "pool": result.pool, "top_k": top_k, "proxy": proxy.name, "seed": seed,
        "proxy_evals": result.proxy_evals, "proxy_seconds": result.proxy_seconds,
        "failed": result.failed, "charged_seconds": result.charged_seconds,
    })
    return result
