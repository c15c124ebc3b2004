"""Optuna objectives: a proxy score (training-free search) or a benchmark lookup (simulated
vanilla search). Both suggest the architecture through the public ``trial.suggest_*`` API, so any
Optuna sampler drives them, and both record what produced each value as trial user attributes."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import json
import math
import time
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from zcnas.benchmarks import Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import InvalidArchError
from zcnas.exceptions import ScoreError
from zcnas.exceptions import ZcnasError
from zcnas.scoring import Scorable
from zcnas.scoring import failed_record
from zcnas.scoring import isolated_rng
from zcnas.scoring import resolve
from zcnas.scoring import resolve_device
from zcnas.scoring import score_record
from zcnas.search._study import describe_study
from zcnas.search._study import set_trial_user_attrs
from zcnas.spaces import Arch
from zcnas.spaces import DefineByRunSpace
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreRecord
from zcnas.version import __version__


COST_OBJECTIVES = ("params", "flops")  # secondary objectives that are costs: always minimised


def probe_key(space: SearchSpace, benchmark: Benchmark) -> str:
    """One architecture key the benchmark should know (its first key, else the space's first
    valid architecture): what fail-fast checks query before a search starts."""
    keys = benchmark.keys()
    if keys:
        return space.key(space.as_arch(benchmark.encoding(keys[0])))
    return space.key(space.sample(1, seed=0)[0])


def suggest_arch(trial: optuna.Trial, space: SearchSpace) -> Arch:
    """One architecture from ``trial``: ``trial.suggest_*`` for each of ``space.distributions``."""
    arch: Arch = {}
    for name, dist in space.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            arch[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, IntDistribution):
            arch[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            arch[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:  # pragma: no cover - spaces use the three public distribution types
            raise ZcnasError(f"space {space.name} uses unsupported distribution {dist!r}")
    return arch


def _as_space(space: SearchSpace | str) -> SearchSpace:
    return get_space(space) if isinstance(space, str) else space


def record_attrs(rec: ScoreRecord, proxy: Scorable) -> dict[str, Any]:
    """The user attributes that identify a proxy score (see :class:`ProxyObjective`)."""
    return {
        "arch_key": rec.key.arch_key, "proxy": proxy.name, "proxy_version": proxy.version,
        "proxy_params": json.loads(rec.key.params_json), "seed": rec.key.seed,
        "batch_id": rec.key.batch_id, "batch_source": rec.batch_source, "seconds": rec.seconds,
        "cached": rec.cached, "device": rec.device, "zcnas_version": rec.zcnas_version,
    }


class ProxyObjective:
    """``study.optimize(ProxyObjective(space, proxy, batch))``: the trial value is the proxy score.

    Each trial suggests an architecture, scores it through :func:`zcnas.scoring.score_record`
    (cached in ``cache``), and sets the user attributes ``arch_key, proxy, proxy_version,
    proxy_params, seed, batch_id, batch_source, seconds, cached, device, zcnas_version`` and
    ``proxy_seconds`` (compute seconds actually spent in this trial: 0 for a cache hit).

    Define-by-run: instead of a space, give ``build=lambda trial: nn.Module``; the function
    suggests whatever it needs (conditional parameters included) and returns the network. Its
    parameters are the cache key (:class:`~zcnas.spaces.DefineByRunSpace`), so any sampler
    (TPE, random, GP, NSGA-II) drives it.

    A failed score (NaN/inf, out of memory, ``ScoreError``, an exception of the proxy, an
    invalid architecture) sets ``fail_reason`` and returns NaN, so Optuna records the trial as
    FAIL and the study goes on.

    Args:
        objectives: ``("proxy",)`` (default) or with more objectives, e.g.
            ``("proxy", "params")``, ``("proxy", "flops")`` (costs: minimised), another proxy
            (its own direction) or ``"bench:<metric>"``, a metric of ``benchmark`` on
            ``dataset`` such as ``bench:edgegpu_latency`` (HW-NAS-Bench; direction from the
            benchmark). The values are then a tuple: use :attr:`directions` for
            ``create_study``.
        benchmark / dataset: where ``bench:`` objectives are looked up.
    """

    def __init__(self, space: SearchSpace | str | None = None, proxy: Scorable | str | None = None,
                 batch: Batch | None = None, *, build: Callable[[optuna.Trial], Any] | None = None,
                 seed: int = 0, device: str = "cpu", cache: ScoreCache | None = None,
                 objectives: Sequence[str] = ("proxy",), benchmark: Benchmark | str | None = None,
                 dataset: str | None = None) -> None:
        if (space is None) == (build is None):
            raise ZcnasError("give either a space or build=<function of the trial that returns "
                             "an nn.Module> (define-by-run)")
        if proxy is None or batch is None:
            raise ZcnasError("ProxyObjective needs a proxy and a batch (zcnas.load_batch)")
        self.build = build
        self.space = DefineByRunSpace(build) if build is not None else _as_space(space)  # type: ignore[arg-type]
        self.proxy = resolve(proxy)
        self.batch = batch
        self.seed = seed
        self.device = resolve_device(device)  # a missing GPU fails here, not in every trial
        self.cache = cache
        self.objectives = tuple(objectives)
        if not self.objectives or self.objectives[0] != "proxy":
            raise ZcnasError(
                f"objectives must start with 'proxy', e.g. ('proxy',) or ('proxy', 'params'); "
                f"got {self.objectives}"
            )
        self.benchmark = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
        self.dataset = dataset
        bench_metrics = [o[6:] for o in self.objectives[1:] if o.startswith("bench:")]
        if bench_metrics:
            if self.benchmark is None:
                raise ZcnasError(f"objectives {bench_metrics} need benchmark=<name>")
            self.dataset = dataset or self.benchmark.datasets[0]
            for metric in bench_metrics:
                if metric not in self.benchmark.metrics:
                    raise ZcnasError(f"benchmark {self.benchmark.name!r} has no metric "
                                     f"{metric!r}; choose {', '.join(self.benchmark.metrics)}")
        self._extra = [None if o.startswith("bench:") else resolve(o)
                       for o in self.objectives[1:]]
        self._described: int | None = None

    @property
    def directions(self) -> list[str]:
        """Optuna directions matching the values this objective returns."""
        out: list[str] = [self.proxy.direction]
        for name, proxy in zip(self.objectives[1:], self._extra):
            if proxy is None:
                better = self.benchmark.higher_is_better.get(name[6:], True)  # type: ignore[union-attr]
                out.append("maximize" if better else "minimize")
            else:
                out.append("minimize" if proxy.name in COST_OBJECTIVES else proxy.direction)
        return out

    def _score(self, proxy: Scorable, arch: Arch) -> ScoreRecord:
        try:
            return score_record(self.space, proxy, arch, self.batch, seed=self.seed,
                                device=self.device, cache=self.cache)
        except (ScoreError, InvalidArchError) as exc:  # a failed trial, not a crashed study
            try:
                key = self.space.key(arch)
            except InvalidArchError:
                key = json.dumps(dict(arch), sort_keys=True, default=str)
            return failed_record(self.space, proxy, key, self.batch, self.seed, self.device,
                                 str(exc))

    def suggest(self, trial: optuna.Trial) -> Arch:
        """The trial's architecture: the space's parameters, or those ``build`` suggests."""
        if self.build is None:
            return suggest_arch(trial, self.space)
        with isolated_rng("cpu"):
            self.build(trial)  # defines the parameters; the score rebuilds from them
        return dict(trial.params)

    def _bench_value(self, metric: str, key: str) -> tuple[float | None, str | None]:
        # both are set in __init__ whenever a bench: objective is given
        assert self.benchmark is not None and self.dataset is not None
        try:
            return self.benchmark.query(key, dataset=self.dataset, metric=metric), None
        except DataError as exc:
            return None, str(exc)

    def describe(self, study: optuna.Study) -> None:
        """Record in ``study`` what it holds (once per study; see ``describe_study``)."""
        if self._described == study._study_id:
            return
        describe_study(study, kind="proxy", space=self.space.cache_name,
                       objective=self.proxy.name,
                       metric_names=[self.proxy.name, *self.objectives[1:]],
                       benchmark=self.benchmark.name if self.benchmark else None,
                       dataset=self.dataset, metric=None)
        self._described = study._study_id

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        self.describe(trial.study)
        arch = self.suggest(trial)
        rec = self._score(self.proxy, arch)
        attrs = record_attrs(rec, self.proxy)
        spent = 0.0 if rec.cached else rec.seconds
        values = [rec.value]
        reason = rec.reason
        for name, proxy in zip(self.objectives[1:], self._extra):
            if proxy is None:
                value, why = self._bench_value(name[6:], rec.key.arch_key)
            else:
                extra = self._score(proxy, arch)
                spent += 0.0 if extra.cached else extra.seconds
                value, why = extra.value, (None if extra.ok else extra.reason)
            attrs[f"{name}_value"] = value
            values.append(value)
            reason = reason or (None if why is None else f"{name}: {why}")
        attrs["proxy_seconds"] = spent
        failed = reason is not None or any(v is None or not math.isfinite(v) for v in values)
        if failed:
            attrs["fail_reason"] = reason or "non-finite value"
        set_trial_user_attrs(trial, attrs)
        if failed:
            nan = float("nan")
            return nan if len(values) == 1 else tuple(nan for _ in values)
        assert all(v is not None for v in values)
        return float(values[0]) if len(values) == 1 else tuple(float(v) for v in values)  # type: ignore[arg-type]


class BenchmarkObjective:
    """Vanilla (simulated) NAS: the trial value is the benchmark's ``search_metric``.

    The search optimises ``search_metric`` (e.g. ``"valid_12ep"``: 12-epoch validation accuracy,
    NB201's protocol) while ``metric`` (e.g. ``"test"``: 200-epoch test accuracy) is only recorded,
    never returned, to keep the test set out of the search (proxies.md pitfall 13).

    User attributes: ``arch_key, benchmark, dataset, search_metric, search_value, report_metric,
    report_value, queries`` (1 per trial), ``train_seconds`` (simulated cost of obtaining
    ``search_metric``: the benchmark's own time if it has one, else ``cost_model``), ``cost_model``.

    Define-by-run: ``suggest=lambda trial: arch`` (a dict or key of ``space``) replaces the
    default one-``suggest_*``-per-parameter encoding, e.g. for conditional parameters that map
    onto benchmark cells.

    Args:
        cost_model: ``"auto"`` (the benchmark's times, else its ``cost_model(space)``),
            ``None`` (count queries only) or an object with ``seconds(arch, dataset, metric)``.
        cache: score cache for the FLOPs of the cost model.
    """

    def __init__(self, space: SearchSpace | str, benchmark: Benchmark | str, *,
                 dataset: str = "cifar10", metric: str = "test", search_metric: str | None = None,
                 cost_model: Any = "auto", cache: ScoreCache | None = None,
                 direction: str = "maximize",
                 suggest: Callable[[optuna.Trial], Mapping[str, Any] | str] | None = None
                 ) -> None:
        self.suggest_fn = suggest
        self._described: int | None = None
        self.space = _as_space(space)
        self.benchmark = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
        self.dataset = dataset
        self.metric = metric
        self.search_metric = search_metric or metric
        self.direction = direction
        if cost_model == "auto":
            cost_model = self.benchmark.cost_model(self.space)
        self.cost_model = cost_model

    def check(self) -> None:
        """Fail fast (``DataError`` naming the fix) on a bad dataset or metric: query once."""
        probe = probe_key(self.space, self.benchmark)
        self.benchmark.validate(probe, dataset=self.dataset, metric=self.search_metric)
        self.benchmark.validate(probe, dataset=self.dataset, metric=self.metric)

    @property
    def directions(self) -> list[str]:
        return [self.direction]

    def train_seconds(self, arch: Mapping[str, Any]) -> float | None:
        key = self.space.key(arch)
        own = self.benchmark.train_seconds(key, self.dataset)
        if own is not None:
            return own
        if self.cost_model is None:
            return None
        return float(self.cost_model.seconds(arch, self.dataset, self.search_metric))

    def describe(self, study: optuna.Study) -> None:
        """Record in ``study`` what it holds (once per study; see ``describe_study``)."""
        if self._described == study._study_id:
            return
        describe_study(study, kind="benchmark", space=self.space.cache_name,
                       objective=self.search_metric, metric_names=[self.search_metric],
                       benchmark=self.benchmark.name, dataset=self.dataset, metric=self.metric)
        self._described = study._study_id

    def __call__(self, trial: optuna.Trial) -> float:
        self.describe(trial.study)
        start = time.perf_counter()
        try:
            arch = (suggest_arch(trial, self.space) if self.suggest_fn is None
                    else self.space.as_arch(self.suggest_fn(trial)))
            key = self.space.key(arch)
            value = self.benchmark.query(key, dataset=self.dataset, metric=self.search_metric)
            report = self.benchmark.query(key, dataset=self.dataset, metric=self.metric)
        except (InvalidArchError, DataError) as exc:  # not a valid or known cell: a FAIL trial
            set_trial_user_attrs(trial, {"fail_reason": str(exc), "queries": 0,
                                         "zcnas_version": __version__})
            return float("nan")
        attrs: dict[str, Any] = {
            "arch_key": key, "benchmark": self.benchmark.name, "dataset": self.dataset,
            "search_metric": self.search_metric, "search_value": value,
            "report_metric": self.metric, "report_value": report, "queries": 1,
            "query_seconds": time.perf_counter() - start,
            "train_seconds": self.train_seconds(arch),
            "cost_model": (None if self.cost_model is None else
                           f"{getattr(self.cost_model, 'name', type(self.cost_model).__name__)}"
                           f"/v{getattr(self.cost_model, 'version', '?')}"),
            "zcnas_version": __version__,
        }
        set_trial_user_attrs(trial, attrs)
        return float(value)

