"""The NNI 3.0 objects of the adapter: the model space generated from a zcnas space, the proxy
and benchmark evaluators, the strategy factory and the in-process runner.

This module imports NNI; use it through :mod:`zcnas.search.nni`.
"""

from __future__ import annotations

from collections.abc import Mapping
import inspect
import json
from pathlib import Path
import time
from typing import Any

import nni
from nni.nas.evaluator import Evaluator
from nni.nas.execution import SequentialExecutionEngine
from nni.nas.nn.pytorch import ModelSpace
import nni.nas.strategy as nni_strategy
from torch import nn

from zcnas.benchmarks import Benchmark
from zcnas.exceptions import ZcnasError
from zcnas.search import _nni_assisted
from zcnas.search._nni_record import ProxyScorer
from zcnas.search._nni_record import StudyRecorder
from zcnas.search._nni_record import seeded_rng
from zcnas.search._nni_space import categorical_distributions
from zcnas.search._nni_space import to_arch
from zcnas.spaces import DEFAULT_SPACE
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space


class ZcnasModelSpace(ModelSpace):
    """A zcnas search space as an NNI model space, generated from ``space.distributions``.

    Every categorical parameter becomes ``nni.choice(name, choices)`` labelled with the zcnas
    parameter name, so an NNI sample *is* a zcnas architecture dict. ``freeze(sample)`` (and
    NNI's frozen-model context) build ``space.build(arch)``: a plain ``torch.nn.Module``.

    Args:
        space: a zcnas space or its registered name.
        num_classes: classifier width of the built networks.
    """

    def __init__(self, space: SearchSpace | str = DEFAULT_SPACE, num_classes: int = 10) -> None:
        super().__init__()
        zspace = get_space(space) if isinstance(space, str) else space
        self.space = zspace
        self.num_classes = num_classes
        for name, dist in categorical_distributions(zspace).items():
            self.add_mutable(nni.choice(name, list(dist.choices)))

    @classmethod
    def create_fixed_module(cls, sample: dict, space: SearchSpace | str = DEFAULT_SPACE,
                            num_classes: int = 10) -> nn.Module:
        zspace = get_space(space) if isinstance(space, str) else space
        return zspace.build(to_arch(zspace, sample), num_classes=num_classes)

    def freeze(self, sample: dict) -> nn.Module:
        return self.space.build(to_arch(self.space, sample), num_classes=self.num_classes)


class _RecordingEvaluator(Evaluator):
    """Evaluates the sample of each NNI model (no network is built by NNI), reports the
    higher-is-better metric to NNI and stores the trial in the Optuna study."""

    def __init__(self, space: SearchSpace, recorder: StudyRecorder | None,
                 trial_attrs: Mapping[str, Any]) -> None:
        self.space = space
        self.recorder = recorder
        self.trial_attrs = dict(trial_attrs)
        self.history: list[tuple[str, float | None]] = []
        self.progress: Any = None  # a tqdm bar, advanced once per evaluated model

    def measure(self, arch: Arch) -> tuple[float | None, float | None, str | None, dict]:
        """(value to store, metric for NNI, failure reason, extra trial attrs)."""
        raise NotImplementedError

    def evaluate(self, sample: Mapping[str, Any]) -> float | None:
        """The stored value of a sample (no NNI reporting, no recording)."""
        return self.measure(to_arch(self.space, sample))[0]

    def _execute(self, model: Any) -> float | None:
        arch = to_arch(self.space, model.sample)
        key = self.space.key(arch)
        start = time.perf_counter()
        value, metric, reason, attrs = self.measure(arch)
        wall = time.perf_counter() - start
        # "seconds": the proxy's compute time for proxy runs, else the evaluation's wall time
        attrs = {"arch_key": key, "seconds": wall, "wall_seconds": wall,
                 "nni_index": len(self.history), **self.trial_attrs, **attrs}
        if self.recorder is not None:
            self.recorder.add(arch, self.space.distributions, value, reason=reason,
                              user_attrs=attrs, wall_seconds=wall)
        self.history.append((key, value))
        if self.progress is not None:
            self.progress.update(1)
        if metric is not None:
            nni.report_final_result(metric)
        return metric


class ProxyEvaluator(_RecordingEvaluator):
    """NNI evaluator whose metric is a zero-cost proxy score (via ``score_record``, cached).

    NNI strategies maximise, so a ``minimize`` proxy is reported negated; the study stores the
    proxy's own value. A failed score (NaN, out of memory) reports no metric to NNI (its
    strategies skip such models) and is stored as a FAIL trial with the reason.
    """

    def __init__(self, scorer: ProxyScorer, recorder: StudyRecorder | None = None,
                 trial_attrs: Mapping[str, Any] | None = None) -> None:
        super().__init__(scorer.space, recorder, trial_attrs or {})
        self.scorer = scorer

    def measure(self, arch: Arch) -> tuple[float | None, float | None, str | None, dict]:
        rec = self.scorer.record(arch)
        attrs = {"seconds": rec.seconds, "cached": rec.cached, "device": rec.device,
                 "proxy_seconds": 0.0 if rec.cached else rec.seconds}
        if not rec.ok:
            return None, None, rec.reason, attrs
        return rec.value, self.scorer.utility(rec), None, attrs


class BenchmarkEvaluator(_RecordingEvaluator):
    """NNI evaluator that looks the architecture up in a zcnas benchmark (ground truth).

    The metric (``dataset``/``metric`` of :meth:`zcnas.benchmarks.Benchmark.query`) is
    maximised. ``train_seconds`` is the benchmark's own training time, else ``cost_model``'s
    simulated one (an object with ``seconds(arch, dataset, metric)``). When a proxy scorer is
    given (proxy-assisted search), the trial also stores the selected architecture's
    ``proxy_score`` and what the proxy did for this trial: ``prescreen_scored`` (JSON
    ``[[arch_key, score], ...]`` of the architectures scored for it, first time in this run),
    ``prescreen_proxy_evals`` and ``prescreen_proxy_seconds`` (fresh computations only, as the
    Optuna prescreen sampler records them).
    """

    def __init__(self, space: SearchSpace, benchmark: Benchmark, *, dataset: str = "cifar10",
                 metric: str = "test", recorder: StudyRecorder | None = None,
                 trial_attrs: Mapping[str, Any] | None = None,
                 scorer: ProxyScorer | None = None, cost_model: Any = None) -> None:
        super().__init__(space, recorder, trial_attrs or {})
        self.benchmark = benchmark
        self.dataset = dataset
        self.metric = metric
        self.scorer = scorer
        self.cost_model = cost_model
        self._n_scored = 0

    def measure(self, arch: Arch) -> tuple[float | None, float | None, str | None, dict]:
        key = self.space.key(arch)
        value = self.benchmark.query(key, dataset=self.dataset, metric=self.metric)
        attrs: dict[str, Any] = {}
        if self.metric != "test":
            attrs["test"] = self.benchmark.query(key, dataset=self.dataset, metric="test")
        cost = self.benchmark.train_seconds(key, dataset=self.dataset)
        if cost is None and self.cost_model is not None:
            cost = float(self.cost_model.seconds(arch, self.dataset, self.metric))
            attrs["cost_model"] = (f"{getattr(self.cost_model, 'name', '?')}"
                                   f"/v{getattr(self.cost_model, 'version', '?')}")
        if cost is not None:
            attrs["train_seconds"] = cost
        if self.scorer is not None:
            if key in self.scorer.records:
                attrs["proxy_score"] = self.scorer.records[key].value
            new = list(self.scorer.records.values())[self._n_scored:]
            self._n_scored = len(self.scorer.records)
            fresh = [r for r in new if not r.cached]
            attrs.update(
                prescreen_scored=json.dumps([[r.key.arch_key, r.value] for r in new]),
                prescreen_proxy_evals=len(fresh),
                prescreen_proxy_seconds=float(sum(r.seconds for r in fresh)),
            )
        return value, value, None, attrs


# classes (on NNI's untyped strategies), not instances: their __init__ is read below
ASSISTED_CLASSES: dict[str, type[Any]] = {
    "Random": _nni_assisted.ProxyAssistedRandom,
    "RegularizedEvolution": _nni_assisted.ProxyAssistedEvolution,
    "PolicyBasedRL": _nni_assisted.ProxyAssistedPolicyBasedRL,
}
# set by zcnas, not by the user
_RESERVED = {"seed", "space", "scorer", "optimize_mode", "n_candidates"}


def strategy_options(name: str, assisted: bool = False) -> list[str]:
    """The keyword options the strategy accepts (those of NNI's constructor)."""
    if assisted:
        init = ASSISTED_CLASSES[name].__init__
    elif name == "TPE":
        from nni.algorithms.hpo.tpe_tuner import TpeTuner
        init = TpeTuner.__init__
    else:
        init = getattr(nni_strategy, name).__init__
    params = inspect.signature(init).parameters.values()
    return [p.name for p in params if p.name != "self"
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def make_strategy(name: str, kwargs: Mapping[str, Any], *, seed: int, assisted: bool = False,
                  space: SearchSpace | None = None, scorer: ProxyScorer | None = None,
                  n_candidates: int = 10) -> nni_strategy.Strategy:
    """Instantiate an NNI strategy (or its proxy-assisted variant) with validated options.

    Raises:
        ZcnasError: an option the strategy does not take, or a value NNI rejects.
    """
    allowed = strategy_options(name, assisted)
    for key in sorted(set(kwargs) & _RESERVED):
        why = {"seed": "pass it as the run's seed (--seed)",
               "optimize_mode": "zcnas reports a metric to maximise",
               "n_candidates": "pass it as n_candidates (--n-candidates)"}.get(key, "zcnas sets it")
        raise ZcnasError(f"strategy option {key!r} is set by zcnas ({why}); remove it from the "
                         f"strategy options")
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        valid = ", ".join(a for a in allowed if a not in _RESERVED)
        raise ZcnasError(
            f"unknown option(s) {', '.join(unknown)} for strategy {name}; valid options: {valid}"
        )
    options = dict(kwargs)
    if "seed" in allowed:
        options["seed"] = seed
    if name == "TPE" and not assisted:
        options["optimize_mode"] = "maximize"  # NNI's TPE minimises by default
    try:
        if assisted:
            return ASSISTED_CLASSES[name](space=space, scorer=scorer, n_candidates=n_candidates,
                                          **options)
        return getattr(nni_strategy, name)(**options)
    except ImportError as exc:
        raise ZcnasError(f"strategy {name} needs a missing package ({exc}); install the extra: "
                         f"pip install 'zcnas[nni]'") from exc
    except (ValueError, TypeError, AssertionError) as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "defaults"
        raise ZcnasError(f"invalid option for strategy {name} ({given}): {exc}") from exc


def execute(model_space: ModelSpace, evaluator: Evaluator, strategy: nni_strategy.Strategy, *,
            n_trials: int, seed: int, experiment_dir: str | Path | None = None) -> None:
    """Run ``strategy`` in this process on NNI's sequential engine for ``n_trials`` models.

    Without ``experiment_dir`` the strategy runs directly on a ``SequentialExecutionEngine``
    (no files). With it, the run is an NNI ``NasExperiment`` with
    ``NasExperimentConfig("sequential", "simplified")``: checkpoints and logs go to that folder
    and the experiment appears in NNI's experiment list; no NNI manager or web server starts.
    """
    with seeded_rng(seed):
        if experiment_dir is None:
            from nni.nas.space import SimplifiedModelSpace

            engine = SequentialExecutionEngine(max_model_count=n_trials)
            strategy(SimplifiedModelSpace.from_model(model_space, evaluator), engine)
            return
        from nni.nas.experiment import NasExperiment
        from nni.nas.experiment import NasExperimentConfig

        config = NasExperimentConfig("sequential", "simplified")
        config.max_trial_number = n_trials
        config.experiment_working_directory = str(Path(experiment_dir).expanduser().resolve())
        NasExperiment(model_space, evaluator, strategy, config).run()
