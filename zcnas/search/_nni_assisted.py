"""Proxy-assisted NNI strategies: GradSign-assisted search (Zhang & Jia, ICLR 2022, Sec. 5.3)
as small subclasses of NNI's Random, RegularizedEvolution and PolicyBasedRL.

Each proposal step draws ``n_candidates`` architectures, scores them with a zero-cost proxy
(:class:`~zcnas.search._nni_record.ProxyScorer`, cached in SQL) and submits only the best
one to the evaluator (a benchmark or real training). Proxy scores do not count as trials.

- ``ProxyAssistedRandom`` (G-RS): k uniform random architectures -> proxy argmax.
- ``ProxyAssistedEvolution`` (G-REA): tournament parent -> k random single-op mutations ->
  proxy argmax. The initial population stays random (no warm-up), as in the paper's code.
- ``ProxyAssistedPolicyBasedRL`` (G-RL): policy sample -> k random single-op mutations of it ->
  proxy argmax. The paper's REINFORCE updates the policy with the log-probability of the
  *policy sample* and the reward of the *selected mutant*. Here ``credit="selected"`` (default)
  rebuilds the trajectory with the selected mutant's actions, so the update credits the
  architecture that was actually evaluated; ``credit="sampled"`` reproduces the paper's
  mismatch. NNI's default policy is PPO, not REINFORCE.

This module imports NNI; use it through :mod:`zcnas.search.nni`.
"""

from __future__ import annotations

from copy import deepcopy
import logging
from typing import Any
from typing import Literal

from nni.mutable import Sample
from nni.nas.execution import ExecutionEngine
from nni.nas.space import ExecutableModelSpace
from nni.nas.strategy import PolicyBasedRL
from nni.nas.strategy import Random
from nni.nas.strategy import RegularizedEvolution
from nni.nas.strategy.utils import DeduplicationHelper
from nni.nas.strategy.utils import DuplicationError
import numpy as np

from zcnas.search._candidates import mutation_candidates
from zcnas.search._nni_record import ProxyScorer
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace


_logger = logging.getLogger(__name__)


def _is_seen(helper: DeduplicationHelper | None, sample: Sample) -> bool:
    """Whether ``sample`` is in the dedup history (the history is left unchanged)."""
    if helper is None:
        return False
    try:
        helper.dedup(sample)
    except DuplicationError:
        return True
    helper.remove(sample)
    return False


class _Prescreen:
    """The shared proposal step: the best of several candidates by proxy score."""

    space: SearchSpace
    scorer: ProxyScorer
    n_candidates: int

    def _init_prescreen(self, space: SearchSpace, scorer: ProxyScorer, n_candidates: int) -> None:
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
        self.space = space
        self.scorer = scorer
        self.n_candidates = n_candidates

    def _sample(self, arch: Arch) -> Sample:
        return {name: arch[name] for name in self.space.distributions}

    def _pick(self, candidates: list[Arch], dedup: DeduplicationHelper | None) -> Sample:
        """The proxy argmax among the candidates not tried before (raises DuplicationError,
        which NNI's retry helper catches, if all were tried)."""
        fresh = [c for c in candidates if not _is_seen(dedup, self._sample(c))]
        if not fresh:
            raise DuplicationError(self._sample(candidates[0]))
        # a single candidate needs no score (n_candidates=1 is the unscreened control)
        best = fresh[0] if len(fresh) == 1 else fresh[self.scorer.argmax(fresh)]
        sample = self._sample(best)
        if dedup is not None:
            dedup.dedup(sample)
        return sample


class ProxyAssistedRandom(_Prescreen, Random):
    """G-RS: each proposal is the proxy argmax of ``n_candidates`` uniform random architectures.

    Args:
        space: the zcnas search space (its parameter names are the NNI labels).
        scorer: scores candidates with the proxy.
        n_candidates: candidates per proposal (the paper uses 10).
        dedup: never propose an architecture twice (as NNI's Random).
        seed: random seed.
    """

    def __init__(self, *, space: SearchSpace, scorer: ProxyScorer, n_candidates: int = 10,
                 dedup: bool = True, seed: int | None = None) -> None:
        Random.__init__(self, dedup=dedup, seed=seed)
        self._init_prescreen(space, scorer, n_candidates)

    def random(self, model_space: ExecutableModelSpace) -> ExecutableModelSpace:
        simplified = model_space.simplify()
        candidates = [
            self.space.as_arch({label: m.random(random_state=self._random_state)
                                for label, m in simplified.items()})
            for _ in range(self.n_candidates)
        ]
        return model_space.freeze(self._pick(candidates, self._dedup_helper))


class ProxyAssistedEvolution(_Prescreen, RegularizedEvolution):
    """G-REA: regularized (aging) evolution whose child is the proxy argmax of ``n_candidates``
    random single-op mutations of the tournament winner.

    Args:
        space: the zcnas search space.
        scorer: scores candidates with the proxy.
        n_candidates: mutations per child (the paper uses 10).
        population_size: as NNI's RegularizedEvolution.
        sample_size: tournament size, as NNI's RegularizedEvolution.
        dedup: never propose an architecture twice.
        seed: random seed.
    """

    def __init__(self, *, space: SearchSpace, scorer: ProxyScorer, n_candidates: int = 10,
                 population_size: int = 100, sample_size: int = 25, dedup: bool = True,
                 seed: int | None = None) -> None:
        RegularizedEvolution.__init__(self, population_size=population_size,
                                      sample_size=sample_size, dedup=dedup, seed=seed)
        self._init_prescreen(space, scorer, n_candidates)
        self._mutation_rng = np.random.default_rng(seed)

    def new_individual(self) -> ExecutableModelSpace:
        parent = self.space.as_arch(self.best_parent())
        candidates = mutation_candidates(self.space, parent, self.n_candidates,
                                         self._mutation_rng)
        sample = self._pick(candidates, self._dedup_helper)
        model = self.model_space.freeze(sample)
        self._individual_counter += 1
        _logger.info("[Individual %4d] Proxy-screened mutation: %s", self._individual_counter,
                     sample)
        return model

    def state_dict(self) -> dict:
        return {**super().state_dict(), "mutation_rng": self._mutation_rng.bit_generator.state}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        if "mutation_rng" in state_dict:
            self._mutation_rng.bit_generator.state = state_dict["mutation_rng"]


class ProxyAssistedPolicyBasedRL(_Prescreen, PolicyBasedRL):
    """G-RL: the policy's sample is replaced by the proxy argmax of ``n_candidates`` random
    single-op mutations of it before evaluation.

    Args:
        space: the zcnas search space.
        scorer: scores candidates with the proxy.
        n_candidates: mutations per policy sample (the paper uses 10).
        credit: ``"selected"`` rebuilds the trajectory with the evaluated architecture's actions
            (consistent policy gradient); ``"sampled"`` keeps the policy sample's trajectory
            with the selected mutant's reward (the paper's code).
        samples_per_update, replay_buffer_size, reward_for_invalid, policy_fn, update_kwargs:
            as NNI's PolicyBasedRL (its policy is PPO by default).
    """

    def __init__(self, *, space: SearchSpace, scorer: ProxyScorer, n_candidates: int = 10,
                 credit: Literal["selected", "sampled"] = "selected",
                 samples_per_update: int = 20, replay_buffer_size: int | None = None,
                 reward_for_invalid: float | None = None, policy_fn: Any = None,
                 update_kwargs: dict | None = None) -> None:
        if credit not in ("selected", "sampled"):
            raise ValueError(f"credit must be 'selected' or 'sampled', got {credit!r}")
        PolicyBasedRL.__init__(
            self, samples_per_update=samples_per_update, replay_buffer_size=replay_buffer_size,
            reward_for_invalid=reward_for_invalid, policy_fn=policy_fn,
            update_kwargs=update_kwargs,
        )
        self._init_prescreen(space, scorer, n_candidates)
        self.credit = credit
        self._mutation_rng: np.random.Generator | None = None

    def _initialize(self, model_space: ExecutableModelSpace,
                    engine: ExecutionEngine) -> ExecutableModelSpace:
        # drawn from the (seeded) global numpy generator, like tianshou's own randomness
        self._mutation_rng = np.random.default_rng(int(np.random.randint(2**31)))
        return super()._initialize(model_space, engine)

    def _screen(self, generator: Any, sample: Sample) -> Sample:
        assert self._mutation_rng is not None
        arch = self.space.as_arch(sample)
        candidates = mutation_candidates(self.space, arch, self.n_candidates, self._mutation_rng)
        chosen = self._pick(candidates, None)
        if self.credit == "selected":
            _replay(generator, chosen)
        return chosen

    def _run(self) -> None:
        # NNI 3.0's PolicyBasedRL._run with the proxy screening step added after sampling.
        from nni.mutable import SampleValidationError
        from nni.nas.strategy._rl_impl import TuningTrajectoryGenerator

        assert self._policy is not None and self._replay_buffer is not None
        self._policy.train()
        invalid_count = 0
        while True:
            self._harvest_running_models()
            if not self.wait_for_resource():
                break
            generator = TuningTrajectoryGenerator(self.model_space, self._policy)
            sample = self._screen(generator, generator.next_sample())
            try:
                model = self.model_space.freeze(sample)
                invalid_count = 0
            except SampleValidationError:
                invalid_count += 1
                if invalid_count > self._invalid_patience:
                    _logger.warning("Too many invalid samples. No more sampling.")
                    break
                if self.reward_for_invalid is not None:
                    self._add_trajectory(generator.send_reward(self.reward_for_invalid))
                continue
            self._running_models.append((model, generator))
            self.engine.submit_models(model)
        self.engine.wait_models(*[model for model, _ in self._running_models])
        if not self._harvest_running_models():
            self._update_policy()


def _replay(generator: Any, sample: Sample) -> None:
    """Rebuild the pending trajectory of NNI's ``TuningTrajectoryGenerator`` so that its actions
    are those of ``sample`` (categorical labels only), as if the policy had sampled it.

    Mirrors ``TuningTrajectoryGenerator.next_sample`` (NNI 3.0) with the actions forced; the
    policy is still called at each step for its state and per-step data.
    """
    from tianshou.data import Batch

    obs, info = generator.env.reset()
    transition = Batch(obs=obs, act={}, rew={}, terminated={}, truncated={}, done={},
                       obs_next={}, info=info, policy={})
    trajectory = []
    state = None
    labels = generator.search_labels
    for step, (label, index) in enumerate(labels):
        if index is not None:
            raise ValueError("proxy-assisted RL supports categorical choices only")
        result = generator.policy(Batch([transition]), state)
        action = list(generator.simplified_space[label].values).index(sample[label])
        transition.update(policy=generator._canonicalize_policy_data(result),
                          act=np.asarray(action, dtype=np.int64))
        if step == len(labels) - 1:
            break
        obs_next, rew, terminated, truncated, info = generator.env.step(action)
        transition.update(obs_next=obs_next, rew=rew, terminated=terminated,
                          truncated=truncated, done=terminated, info=info)
        trajectory.append(deepcopy(transition))
        state = result.get("state", None)
        transition.obs = transition.obs_next
    generator._trajectory = trajectory
    generator._transition = transition
    generator._last_action = action
    generator.sample = dict(sample)
