"""Model-based samplers: a small Gaussian process, GP-BO over architectures with proxy scores
as features, and RoBoT (BO of the weights of a proxy combination, then greedy exploitation).

The GP (:class:`SmallGP`) is exact inference with a product of RBF kernels over feature blocks
(each block has its own length-scale, chosen by the log marginal likelihood over a grid), on
standardised targets: a few hundred points at most, so a Cholesky factorisation per fit is
cheap. Optuna's ``GPSampler`` models the sampler's own parameters only; these samplers need
inputs that are functions of the architecture (proxy scores) or of another parameterisation
(RoBoT's weights), hence the small model here.
"""

from __future__ import annotations

from collections.abc import Sequence
import itertools
import json
import math

import numpy as np
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from scipy import linalg
from scipy import stats

from zcnas.exceptions import ZcnasError
from zcnas.search._arch_samplers import ArchSampler
from zcnas.search._features import MemberScorer
from zcnas.search._features import signed_log
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace


class SmallGP:
    """Exact GP regression with per-block RBF length-scales picked by marginal likelihood.

    Args:
        blocks: column slices of the input, one length-scale each.
        grid: candidate length-scales per block (``math.inf`` switches a block off).
        noise: observation noise variance, in units of the standardised target.
    """

    def __init__(self, blocks: Sequence[slice], grid: Sequence[Sequence[float]], *,
                 noise: float = 1e-2) -> None:
        if len(blocks) != len(grid):
            raise ZcnasError("one length-scale grid per feature block")
        self.blocks = list(blocks)
        self.grid = [list(g) for g in grid]
        self.noise = noise
        self.lengthscales: tuple[float, ...] = tuple(g[0] for g in self.grid)

    def _kernel(self, a: np.ndarray, b: np.ndarray, ls: Sequence[float]) -> np.ndarray:
        d = np.zeros((len(a), len(b)))
        for sl, ell in zip(self.blocks, ls):
            if math.isinf(ell):
                continue
            diff = a[:, None, sl] - b[None, :, sl]
            d += (diff ** 2).sum(-1) / (ell ** 2)
        return np.exp(-0.5 * d)

    def fit(self, x: np.ndarray, y: np.ndarray) -> SmallGP:
        """Fit on (x, y); y is standardised internally."""
        self.x = np.asarray(x, float)
        y = np.asarray(y, float)
        self.mu, self.sd = float(y.mean()), float(y.std() or 1.0)
        self.y = (y - self.mu) / self.sd
        best = None
        for ls in itertools.product(*self.grid):
            k = self._kernel(self.x, self.x, ls) + self.noise * np.eye(len(self.x))
            try:
                chol = linalg.cho_factor(k, lower=True)
            except linalg.LinAlgError:
                continue
            alpha = linalg.cho_solve(chol, self.y)
            lml = -0.5 * self.y @ alpha - np.log(np.diag(chol[0])).sum()
            if best is None or lml > best[0]:
                best = (lml, ls, chol, alpha)
        if best is None:
            raise ZcnasError("GP fit failed for every length-scale")
        _, self.lengthscales, self._chol, self._alpha = best
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation at ``x`` (in the target's units)."""
        ks = self._kernel(np.asarray(x, float), self.x, self.lengthscales)
        mean = ks @ self._alpha
        v = linalg.cho_solve(self._chol, ks.T)
        var = np.clip(1.0 - np.einsum("ij,ji->i", ks, v), 1e-12, None)
        return self.mu + self.sd * mean, self.sd * np.sqrt(var)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float,
                         xi: float = 0.0) -> np.ndarray:
    """EI of maximisation over ``best``."""
    z = (mean - best - xi) / sd
    return (mean - best - xi) * stats.norm.cdf(z) + sd * stats.norm.pdf(z)


def one_hot(space: SearchSpace, archs: Sequence[Arch]) -> np.ndarray:
    """One-hot encoding of categorical architectures (one block of columns per parameter)."""
    cols = []
    for name, dist in space.distributions.items():
        choices = list(getattr(dist, "choices", ()))
        if not choices:
            raise ZcnasError(f"one-hot features need categorical parameters; {name} is not")
        block = np.zeros((len(archs), len(choices)))
        for i, a in enumerate(archs):
            block[i, choices.index(a[name])] = 1.0
        cols.append(block)
    return np.hstack(cols)


class GPSurrogateSampler(ArchSampler):
    """GP-based Bayesian optimisation over whole architectures, with optional proxy features.

    The first ``n_startup`` trials are uniform random. Then each trial fits :class:`SmallGP` on
    the complete trials and queries the expected-improvement argmax among fresh candidates:
    ``n_uniform`` uniform random architectures plus ``n_mutations`` random single-parameter
    mutations of the current top-5 (BANANAS-style local candidates), never one already tried.
    Inputs are the one-hot encoding of the architecture (vanilla) and, with a ``scorer``, the
    members' scores as extra features (signed log, standardised over the points of the fit):
    zero-cost proxies as surrogate features, as NAS-Bench-Suite-Zero found helps model-based
    predictors (White et al., NeurIPS 2022 datasets track). The proxy block has its own
    length-scale, including "off" (``inf``), chosen by marginal likelihood, so a useless proxy
    is ignored. Every candidate the scorer sees is charged once per run.
    """

    def __init__(self, space: SearchSpace | str, *, scorer: MemberScorer | None = None,
                 n_startup: int = 10, n_uniform: int = 20, n_mutations: int = 20,
                 xi: float = 0.0, seed: int | None = None) -> None:
        super().__init__(space, scorer=scorer, seed=seed)
        if n_startup < 2 or n_uniform + n_mutations < 1:
            raise ZcnasError("GP-BO needs n_startup >= 2 and at least one candidate per trial")
        self.n_startup = n_startup
        self.n_uniform = n_uniform
        self.n_mutations = n_mutations
        self.xi = xi

    def _features(self, archs: Sequence[Arch]) -> tuple[np.ndarray, list[slice]]:
        x = one_hot(self.space, archs)
        blocks = [slice(0, x.shape[1])]
        if self.scorer is not None:
            p = signed_log(self.scorer.values(archs))
            low = np.array([c[np.isfinite(c)].min() if np.isfinite(c).any() else 0.0
                            for c in p.T])
            p = np.where(np.isfinite(p), p, low)  # a failed score counts as the worst seen
            p = (p - p.mean(0)) / np.where(p.std(0) > 0, p.std(0), 1.0)
            blocks.append(slice(x.shape[1], x.shape[1] + p.shape[1]))
            x = np.hstack([x, p])
        return x, blocks

    def propose(self, study: Study, trial: FrozenTrial) -> Arch:
        hist = self.history(study)
        seen = self.seen_keys(study)
        if len(hist) < self.n_startup:
            return (self.uniform(1, seen) or [self.space.random_arch(self._rng)])[0]
        top = [a for a, _ in sorted(hist, key=lambda av: -av[1])[:5]]
        cands = self.uniform(self.n_uniform, seen)
        keys = seen | {self.space.key(c) for c in cands}
        for i in range(self.n_mutations):
            child = self.space.mutate(top[i % len(top)], self._rng)
            k = self.space.key(child)
            if k not in keys:
                keys.add(k)
                cands.append(child)
        if not cands:
            return self.space.random_arch(self._rng)
        archs = [a for a, _ in hist] + cands
        x, blocks = self._features(archs)
        n_onehot = len(self.space.distributions)
        grid: list[list[float]] = [[math.sqrt(n_onehot) * f for f in (0.5, 1.0, 2.0)]]
        if len(blocks) > 1:
            grid.append([0.5, 1.0, 2.0, math.inf])
        y = np.array([v for _, v in hist])
        gp = SmallGP(blocks, grid).fit(x[:len(hist)], y)
        mean, sd = gp.predict(x[len(hist):])
        ei = expected_improvement(mean, sd, float(y.max()), self.xi)
        pick = int(np.argmax(ei))
        self._attrs.update(gp_lengthscales=json.dumps([float(v) for v in gp.lengthscales]),
                           gp_ei=float(ei[pick]), gp_candidates=len(cands))
        return cands[pick]


class RoBoTSampler(ArchSampler):
    """RoBoT (He et al., ICLR 2024): Bayesian optimisation of the weights of a linear
    combination of training-free metrics, then greedy exploitation of the best combination.

    As the authors' ``search_nb201.py`` (repository ``hzf1174/RoBoT``): the members are scored on
    a pool of architectures (``pool=None`` or 0: the whole space, as the paper; an int: that many
    uniform random architectures, seeded by ``pool_seed``), each member is log-transformed
    (signed log) and min-max normalised over the pool, and a weight vector w in [-1, 1]^m ranks
    the pool by ``sum_j w_j m_j``. BO proposes w (GP with UCB, kappa 2.576, the first w uniform;
    the authors use ``bayes_opt``'s GP-UCB) and the pool's top architecture under w is queried;
    when that architecture was queried before, its known value is the observation and no query
    is spent. After ``n_bo`` weight proposals the sampler queries, in order, the best
    combination's ranking of the pool (skipping what was queried): the exploitation phase. The
    paper's NB201 runs use a budget of T = 20 queries, ``n_bo = T - 1`` BO steps; a step
    without a new architecture is free, so the BO phase ends after T0 <= T queries.
    Charged: every pool architecture (the pool is scored before the first query).
    """

    def __init__(self, space: SearchSpace | str, *, scorer: MemberScorer,
                 pool: int | None = None, pool_seed: int = 0, n_bo: int = 19,
                 kappa: float = 2.576, n_acquisition: int = 2000,
                 seed: int | None = None) -> None:
        super().__init__(space, scorer=scorer, seed=seed)
        pool = pool or None
        if n_bo < 1 or (pool is not None and pool < 2):
            raise ZcnasError("RoBoT needs n_bo >= 1 and a pool of at least 2 architectures")
        self.pool_size = pool
        self.pool_seed = pool_seed
        self.n_bo = n_bo
        self.kappa = kappa
        self.n_acquisition = n_acquisition
        self._pool: list[Arch] | None = None
        self._keys: list[str] = []
        self._metrics: np.ndarray | None = None
        self.observations: list[tuple[np.ndarray, float]] = []
        self.bo_steps = 0
        self._pending: tuple[int, np.ndarray] | None = None

    def _prepare(self) -> None:
        assert self.scorer is not None
        if self.pool_size is None:
            self._pool = list(self.space.all_archs())
        else:
            self._pool = self.space.sample(min(self.pool_size, self.space.size()),
                                           seed=self.pool_seed)
        self._keys = [self.space.key(a) for a in self._pool]
        raw = signed_log(self.scorer.values(self._pool))
        lo, hi = np.nanmin(raw, 0), np.nanmax(raw, 0)
        span = np.where(hi > lo, hi - lo, 1.0)
        self._metrics = np.nan_to_num((raw - lo) / span, nan=0.0)  # the authors skip NaNs

    def ranking(self, w: np.ndarray) -> np.ndarray:
        """Pool indices, best first, under weights ``w``."""
        assert self._metrics is not None
        return np.argsort(-(self._metrics @ w), kind="stable")

    def _next_weights(self) -> np.ndarray:
        m = len(self.scorer or ())
        if not self.observations:
            return self._rng.uniform(-1, 1, m)
        w = np.array([o[0] for o in self.observations])
        y = np.array([o[1] for o in self.observations])
        gp = SmallGP([slice(0, m)], [[0.25, 0.5, 1.0, 2.0]], noise=1e-4).fit(w, y)
        cand = self._rng.uniform(-1, 1, (self.n_acquisition, m))
        mean, sd = gp.predict(cand)
        return cand[int(np.argmax(mean + self.kappa * sd))]

    def _record_pending(self, study: Study) -> None:
        if self._pending is None:
            return
        number, w = self._pending
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.number == number and t.value is not None:
                self.observations.append((w, self.sign(study) * float(t.value)))
                self._pending = None
                return

    def propose(self, study: Study, trial: FrozenTrial) -> Arch:
        if self._pool is None:
            self._prepare()
        assert self._pool is not None
        self._record_pending(study)
        known = {self.space.key(a): v for a, v in self.history(study)}
        seen = self.seen_keys(study)
        while self.bo_steps < self.n_bo:
            w = self._next_weights()
            self.bo_steps += 1
            top = int(self.ranking(w)[0])
            key = self._keys[top]
            if key in known:
                self.observations.append((w, known[key]))
                continue
            if key in seen:  # queried by a trial that has not finished: no observation
                continue
            self._pending = (trial.number, w)
            self._attrs.update(robot_phase="bo", robot_bo_step=self.bo_steps,
                               robot_weights=json.dumps([float(v) for v in w]))
            return self._pool[top]
        best = max(self.observations, key=lambda o: o[1])[0] if self.observations else \
            np.ones(len(self.scorer or ()))
        for i in self.ranking(best):
            if self._keys[int(i)] not in seen:
                self._attrs.update(robot_phase="exploit",
                                   robot_weights=json.dumps([float(v) for v in best]))
                return self._pool[int(i)]
        return self.space.random_arch(self._rng)  # the whole pool was queried
