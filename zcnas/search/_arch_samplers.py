"""Optuna samplers that propose whole architectures: regularized evolution and REINFORCE as
NAS-Bench-201 ran them, each optionally assisted by a proxy (best of ``n_candidates``).

They share :class:`ArchSampler`: ``sample_relative`` returns every parameter of the space at once,
trials with fixed (enqueued) parameters are left alone, and a proxy-assisted sampler records
what it charged (``proxy_charge``, see :mod:`zcnas.search._features`). Their state lives in the
sampler object, so one sampler drives one study in one process (``zcnas compare`` runs each cell
so).
"""

from __future__ import annotations

from collections.abc import Sequence
import json
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from zcnas.exceptions import ZcnasError
from zcnas.search._features import MemberScorer
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.storage import set_user_attrs


class ArchSampler(BaseSampler):
    """Base of zcnas's architecture samplers (subclasses implement :meth:`propose`).

    Args:
        space: the search space (object or registered name).
        scorer: proxies that assist the search (None: vanilla).
        seed: seeds every random choice of the sampler.
    """

    def __init__(self, space: SearchSpace | str, *, scorer: MemberScorer | None = None,
                 seed: int | None = None) -> None:
        self.space = get_space(space) if isinstance(space, str) else space
        self.scorer = scorer
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._attrs: dict[str, Any] = {}

    # --- what subclasses implement ------------------------------------------------------------
    def propose(self, study: Study, trial: FrozenTrial) -> Arch:
        """The architecture of this trial."""
        raise NotImplementedError

    # --- BaseSampler API ----------------------------------------------------------------------
    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self.space.distributions)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space or trial.system_attrs.get("fixed_params"):
            return {}  # an enqueued trial (e.g. warm-up) keeps its parameters
        self._attrs = {}
        arch = self.propose(study, trial)
        if self.scorer is not None:
            charges = self.scorer.pop_charges()
            self._attrs.update(proxy_charge=json.dumps([[k, s] for k, s in charges]),
                               proxy_charge_seconds=float(sum(s for _, s in charges)),
                               proxy_members=list(self.scorer.names))
        if self._attrs:
            set_user_attrs(study._storage, trial._trial_id, self._attrs)
        return {n: arch[n] for n in self.space.distributions}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return optuna.samplers.RandomSampler(
            seed=int(self._rng.integers(2**31))).sample_independent(
                study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()

    # --- helpers ------------------------------------------------------------------------------
    @staticmethod
    def sign(study: Study) -> float:
        """+1 when the study maximises, -1 when it minimises (values times sign: higher is
        better)."""
        if len(study.directions) != 1:
            raise ZcnasError("zcnas architecture samplers need a single-objective study")
        return 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0

    def history(self, study: Study) -> list[tuple[Arch, float]]:
        """Complete trials of the space, in number order: (architecture, value x sign)."""
        names = list(self.space.distributions)
        sign = self.sign(study)
        out = []
        for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                        key=lambda t: t.number):
            if all(n in t.params for n in names) and t.value is not None:
                out.append(({n: t.params[n] for n in names}, sign * float(t.value)))
        return out

    def seen_keys(self, study: Study) -> set[str]:
        """Keys of every trial's architecture so far (any state), to avoid re-querying."""
        names = list(self.space.distributions)
        out = set()
        for t in study.get_trials(deepcopy=False):
            params = t.params or t.system_attrs.get("fixed_params") or {}
            if all(n in params for n in names):
                try:
                    out.add(self.space.key({n: params[n] for n in names}))
                except ZcnasError:
                    continue
        return out

    def uniform(self, n: int, exclude: set[str] | None = None) -> list[Arch]:
        """``n`` distinct uniformly random architectures whose keys are not in ``exclude``."""
        out: list[Arch] = []
        keys: set[str] = set(exclude or ())
        for _ in range(100 * max(n, 1)):
            if len(out) == n:
                break
            arch = self.space.random_arch(self._rng)
            k = self.space.key(arch)
            if k not in keys:
                keys.add(k)
                out.append(arch)
        return out

    def best_by_proxy(self, candidates: Sequence[Arch], weights: np.ndarray | None = None
                      ) -> int:
        """Index of the candidate with the highest proxy score (the weighted sum of the members'
        per-candidate ranks when there are several); ties and NaNs resolve to the earliest."""
        assert self.scorer is not None
        values = self.scorer.values(candidates)
        if values.shape[1] == 1:
            col = np.where(np.isfinite(values[:, 0]), values[:, 0], -np.inf)
            return int(np.argmax(col))
        ranks = np.column_stack([_ranks(values[:, j]) for j in range(values.shape[1])])
        w = np.ones(values.shape[1]) if weights is None else np.asarray(weights, float)
        return int(np.argmax(ranks @ w))


def _ranks(col: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 (higher is better; NaN lowest)."""
    filled = np.where(np.isfinite(col), col, -np.inf)
    return np.argsort(np.argsort(filled, kind="stable"), kind="stable").astype(float)


class RegularizedEvolutionSampler(ArchSampler):
    """Regularized (aging) evolution (Real et al., AAAI 2019) as NAS-Bench-201 ran it.

    The first ``population_size`` trials are uniform random architectures; afterwards the parent
    is the best of ``sample_size`` trials drawn without replacement from the last
    ``population_size`` complete ones (the aging population), and the child is one random
    single-parameter mutation of it (``SearchSpace.mutate``). NB201's settings are population 10,
    sample 3 (AutoDL-Projects ``scripts-search/NAS-Bench-201-algos/R-EA.sh``); like NB201's
    ``R_EA.py`` a child may repeat an earlier architecture.

    With a ``scorer`` (G-REA, GradSign's move proposal) the child is the proxy's best of
    ``n_candidates`` random mutations of the parent; the random initial population is kept.
    """

    def __init__(self, space: SearchSpace | str, *, population_size: int = 10,
                 sample_size: int = 3, scorer: MemberScorer | None = None,
                 n_candidates: int = 10, seed: int | None = None) -> None:
        if not 1 <= sample_size <= population_size:
            raise ZcnasError(f"need 1 <= sample_size ({sample_size}) <= population_size "
                             f"({population_size})")
        if n_candidates < 1:
            raise ZcnasError(f"n_candidates must be >= 1, got {n_candidates}")
        super().__init__(space, scorer=scorer, seed=seed)
        self.population_size = population_size
        self.sample_size = sample_size
        self.n_candidates = n_candidates

    def propose(self, study: Study, trial: FrozenTrial) -> Arch:
        hist = self.history(study)
        if len(hist) < self.population_size:
            return self.space.random_arch(self._rng)
        pool = hist[-self.population_size:]
        picks = self._rng.choice(len(pool), size=self.sample_size, replace=False)
        parent = max((pool[int(i)] for i in picks), key=lambda av: av[1])[0]
        if self.scorer is None:
            return self.space.mutate(parent, self._rng)
        children = [self.space.mutate(parent, self._rng) for _ in range(self.n_candidates)]
        return children[self.best_by_proxy(children)]


class _EMA:
    """NB201's ``ExponentialMovingAverage`` (bias-corrected by the running denominator)."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self.num = 0.0
        self.den = 0.0

    def update(self, value: float) -> None:
        self.num = self.momentum * self.num + (1 - self.momentum) * value
        self.den = self.momentum * self.den + (1 - self.momentum)

    def value(self) -> float:
        return self.num / self.den


class ReinforceSampler(ArchSampler):
    """REINFORCE with a moving-average baseline, as NAS-Bench-201 ran it.

    The policy is one table of logits per categorical parameter (NB201: 6 edges x 5 operations,
    initialised as ``1e-3 * N(0, 1)``); each trial samples every parameter from its softmax, and
    after each complete trial the loss ``-log p(arch) * (reward - baseline)`` takes one Adam step
    (``learning_rate``; betas 0.9/0.999), where the baseline is the exponential moving average of
    the rewards (``ema_momentum``) updated with the reward first. The reward is the trial value
    (times -1 for a minimising study). This is AutoDL-Projects
    ``exps/NAS-Bench-201-algos/reinforce.py`` (NB201's run: ``--learning_rate 0.001
    --EMA_momentum 0.9``, ``scripts-search/NAS-Bench-201-algos/REINFORCE.sh``), written for
    Optuna's sampler API: NNI's PolicyBasedRL runs a tianshou PPO policy on batches of
    trajectories, with no moving-average baseline and no per-sample update.

    With a ``scorer`` (zero-cost-nas "RL + move proposal") each trial draws ``n_candidates``
    policy samples and queries the proxy's best; the update uses the log-probability of the
    architecture that was evaluated, so the gradient stays that of REINFORCE for the executed
    action.
    """

    def __init__(self, space: SearchSpace | str, *, learning_rate: float = 0.001,
                 ema_momentum: float = 0.9, scorer: MemberScorer | None = None,
                 n_candidates: int = 10, seed: int | None = None) -> None:
        super().__init__(space, scorer=scorer, seed=seed)
        if learning_rate <= 0 or not 0 <= ema_momentum < 1:
            raise ZcnasError("REINFORCE needs learning_rate > 0 and 0 <= ema_momentum < 1")
        if n_candidates < 1:
            raise ZcnasError(f"n_candidates must be >= 1, got {n_candidates}")
        self.learning_rate = learning_rate
        self.ema_momentum = ema_momentum
        self.n_candidates = n_candidates
        self.choices: dict[str, tuple[Any, ...]] = {}
        for name, dist in self.space.distributions.items():
            if not isinstance(dist, CategoricalDistribution):
                raise ZcnasError(f"REINFORCE needs categorical parameters; {name} is "
                                 f"{type(dist).__name__}")
            self.choices[name] = tuple(dist.choices)
        self.logits = {n: 1e-3 * self._rng.standard_normal(len(c))
                       for n, c in self.choices.items()}
        self._m = {n: np.zeros(len(c)) for n, c in self.choices.items()}
        self._v = {n: np.zeros(len(c)) for n, c in self.choices.items()}
        self._steps = 0
        self.baseline = _EMA(ema_momentum)

    def probabilities(self) -> dict[str, np.ndarray]:
        """The policy: softmax of each parameter's logits."""
        out = {}
        for n, z in self.logits.items():
            e = np.exp(z - z.max())
            out[n] = e / e.sum()
        return out

    def _draw(self) -> Arch:
        for _ in range(1000):
            arch = {n: self.choices[n][int(self._rng.choice(len(p), p=p))]
                    for n, p in self.probabilities().items()}
            if self.space.all_valid or self.space.is_valid(arch):
                return arch
        raise ZcnasError(f"the policy drew no valid architecture of {self.space.name} in 1000 "
                         f"tries")

    def propose(self, study: Study, trial: FrozenTrial) -> Arch:
        if self.scorer is None:
            return self._draw()
        candidates = [self._draw() for _ in range(self.n_candidates)]
        return candidates[self.best_by_proxy(candidates)]

    def update(self, arch: Arch, reward: float) -> float:
        """One REINFORCE step for (arch, reward); returns the advantage used."""
        self.baseline.update(reward)
        advantage = reward - self.baseline.value()
        self._steps += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for n, p in self.probabilities().items():
            onehot = np.zeros(len(p))
            onehot[self.choices[n].index(arch[n])] = 1.0
            grad = (p - onehot) * advantage  # d/dz of -log softmax(z)[a] * advantage
            self._m[n] = b1 * self._m[n] + (1 - b1) * grad
            self._v[n] = b2 * self._v[n] + (1 - b2) * grad ** 2
            m_hat = self._m[n] / (1 - b1 ** self._steps)
            v_hat = self._v[n] / (1 - b2 ** self._steps)
            self.logits[n] = self.logits[n] - self.learning_rate * m_hat / (np.sqrt(v_hat) + eps)
        return advantage

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        if state != TrialState.COMPLETE or not values:
            return
        if not all(n in trial.params for n in self.choices):
            return
        self.update({n: trial.params[n] for n in self.choices}, self.sign(study) * values[0])
