"""NNI 3.0 adapter: NNI's own multi-trial strategies search zcnas spaces with proxy scores or
benchmark ground truth, in-process, with every trial stored in SQL as an Optuna study.

Needs the ``nni`` extra (``pip install 'zcnas[nni]'``); NNI is imported only when a function
here is called, and a missing install raises :class:`NNINotInstalledError` naming the fix.

Example::

    from zcnas.search.nni import run_strategy
    run = run_strategy("nb201", "gradsign", "RegularizedEvolution", n_trials=20,
                       batch=zcnas.load_batch("cifar10", 64), storage="sqlite:///zcnas.db",
                       strategy_kwargs={"population_size": 10, "sample_size": 3})
    print(run.best_key, run.best_value)

The NNI model space is generated from ``space.distributions`` (:class:`ZcnasModelSpace`): NNI
labels are the zcnas parameter names, so a sample is an architecture dict (:func:`to_arch`,
:func:`to_sample`). Strategies: ``Random``, ``GridSearch``, ``RegularizedEvolution``,
``PolicyBasedRL`` (needs tianshou 0.4.x) and ``TPE``; with ``assisted=True`` (and a benchmark)
``Random``, ``RegularizedEvolution`` and ``PolicyBasedRL`` become their proxy-assisted variants
(see :mod:`zcnas.search._nni_assisted`).

Known NNI 3.0 behaviour: its TPE replaces a duplicate proposal by the next unseen point of a
grid walk that starts at the first choice of every parameter; on NB201 that is the all-``none``
(disconnected) cell, so once TPE converges it evaluates such grid-order architectures. zcnas
passes ``optimize_mode="maximize"`` (NNI's TPE minimises by default) and leaves the rest as is.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
from dataclasses import dataclass
from dataclasses import field
import importlib
import io
import json
import math
from pathlib import Path
import re
import sys
import time
from typing import TYPE_CHECKING
from typing import Any
import warnings

from tqdm.auto import tqdm

from zcnas.benchmarks import Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Direction
from zcnas.scoring import Scorable
from zcnas.scoring import params_json
from zcnas.scoring import resolve
from zcnas.scoring import resolve_device
from zcnas.search._nni_record import ProxyScorer
from zcnas.search._nni_record import StudyRecorder
from zcnas.search._nni_space import categorical_distributions
from zcnas.search._nni_space import search_space_json
from zcnas.search._nni_space import to_arch
from zcnas.search._nni_space import to_sample
from zcnas.search._objectives import probe_key
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import default_storage
from zcnas.storage import redact
from zcnas.version import __version__


if TYPE_CHECKING:
    from zcnas.search._nni_impl import BenchmarkEvaluator
    from zcnas.search._nni_impl import ProxyEvaluator
    from zcnas.search._nni_impl import ZcnasModelSpace


__all__ = [
    "ASSISTED_STRATEGIES", "INSTALL_HINT", "STRATEGIES", "BenchmarkEvaluator",
    "NNINotInstalledError", "NNIRun", "ProxyEvaluator", "ProxyScorer", "StudyRecorder",
    "ZcnasModelSpace", "require_nni",
    "run_strategy", "search_space_json", "to_arch", "to_key", "to_sample",
]

INSTALL_HINT = "NNI is not installed: pip install 'zcnas[nni]'"
STRATEGIES = ("Random", "GridSearch", "RegularizedEvolution", "PolicyBasedRL", "TPE")
ASSISTED_STRATEGIES = ("Random", "RegularizedEvolution", "PolicyBasedRL")
_LAZY = {
    "ZcnasModelSpace": "zcnas.search._nni_impl",
    "ProxyEvaluator": "zcnas.search._nni_impl",
    "BenchmarkEvaluator": "zcnas.search._nni_impl",
    "ProxyAssistedRandom": "zcnas.search._nni_assisted",
    "ProxyAssistedEvolution": "zcnas.search._nni_assisted",
    "ProxyAssistedPolicyBasedRL": "zcnas.search._nni_assisted",
}


class NNINotInstalledError(ZcnasError, ImportError):
    """The ``nni`` extra (nni, pytorch-lightning, tianshou, setuptools<81) is missing."""


# What NNI 3.0's stack prints on import that zcnas knows to be harmless here (and nothing else):
# gym 0.26's deprecation banner (tianshou 0.4 imports gym; zcnas's RL strategy runs with it), and
# NNI's "is found to be not a nn.Module" warnings for torch classes newer than NNI.
_GYM_BANNER = re.compile(r"^(Gym has been unmaintained|Please upgrade to Gymnasium|Users of this "
                         r"version of Gym|See the migration guide at https://gymnasium)")
_NNI_TORCH_WARNING = r".* is found to be not a nn\.Module, which is unexpected.*"


def _import_quietly(module: str) -> None:
    """Import ``module`` with the known-harmless banner and warnings above removed; anything
    else written to stderr is passed through."""
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NNI_TORCH_WARNING, category=RuntimeWarning)
        try:
            importlib.import_module(module)
        finally:
            kept = [line for line in buffer.getvalue().splitlines()
                    if not _GYM_BANNER.match(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def require_nni() -> None:
    """Import NNI's NAS API, or raise :class:`NNINotInstalledError` with the install command."""
    try:
        _import_quietly("nni")
    except ImportError as exc:
        raise NNINotInstalledError(INSTALL_HINT) from exc
    try:
        _import_quietly("nni.nas.nn.pytorch")
        _import_quietly("nni.nas.strategy")
    except ImportError as exc:
        raise NNINotInstalledError(
            f"NNI's NAS API failed to import ({exc}); install the full extra: "
            f"pip install 'zcnas[nni]'"
        ) from exc


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        require_nni()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_key(space: SearchSpace | str, sample: Mapping[str, Any]) -> str:
    """The zcnas architecture key (e.g. the NB201 string) of an NNI sample."""
    space = get_space(space) if isinstance(space, str) else space
    return space.key(to_arch(space, sample))


@dataclass
class NNIRun:
    """What one :func:`run_strategy` call did.

    Attributes:
        study_name: the Optuna study holding the trials.
        storage: the database URL (password hidden).
        strategy: the NNI strategy (``G-`` prefix for proxy-assisted ones).
        objective: ``proxy:<name>`` or ``benchmark:<name>/<dataset>/<metric>``.
        direction: ``maximize`` or ``minimize`` (of the stored values).
        history: ``(arch_key, value)`` per evaluated model in order; value None if it failed.
        seconds: wall time of the search.
    """

    study_name: str
    storage: str
    strategy: str
    objective: str
    direction: str
    history: list[tuple[str, float | None]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_trials(self) -> int:
        return len(self.history)

    @property
    def n_failed(self) -> int:
        return sum(v is None for _, v in self.history)

    def best(self) -> tuple[str, float] | None:
        """The best ``(arch_key, value)`` found, or None if every trial failed."""
        done = [(k, v) for k, v in self.history if v is not None and math.isfinite(v)]
        if not done:
            return None
        sign = 1.0 if self.direction == "maximize" else -1.0
        return max(done, key=lambda kv: sign * kv[1])

    @property
    def best_key(self) -> str | None:
        best = self.best()
        return best[0] if best else None

    @property
    def best_value(self) -> float | None:
        best = self.best()
        return best[1] if best else None

    def best_so_far(self) -> list[float | None]:
        """The best value after each trial (the search curve)."""
        out: list[float | None] = []
        best: float | None = None
        sign = 1.0 if self.direction == "maximize" else -1.0
        for _, v in self.history:
            if v is not None and (best is None or sign * v > sign * best):
                best = v
            out.append(best)
        return out


def _check_benchmark(space: SearchSpace, benchmark: Benchmark, dataset: str,
                     metric: str) -> None:
    if getattr(benchmark, "space", space.name) != space.name:
        raise ZcnasError(
            f"benchmark {benchmark.name!r} is for space {benchmark.space!r}, not {space.name!r}"
        )
    # one lookup validates dataset and metric (and that the table is there) before any run
    benchmark.validate(probe_key(space, benchmark), dataset=dataset, metric=metric)


def run_strategy(
    space: SearchSpace | str,
    proxy: Scorable | str | None,
    strategy: str = "RegularizedEvolution",
    *,
    n_trials: int = 20,
    batch: Batch | None = None,
    seed: int = 0,
    storage: str | None = None,
    study_name: str | None = None,
    strategy_kwargs: Mapping[str, Any] | None = None,
    benchmark: Benchmark | str | None = None,
    dataset: str = "cifar10",
    metric: str = "test",
    assisted: bool = False,
    n_candidates: int = 10,
    device: str | None = "cpu",
    use_cache: bool = True,
    experiment_dir: str | Path | None = None,
    proxy_seed: int | None = None,
    cost_model: Any = "auto",
    progress: bool = True,
) -> NNIRun:
    """Run one of NNI's strategies in this process and record every trial in SQL.

    Without ``benchmark`` the strategy maximises the proxy score (``ProxyEvaluator``). With
    ``benchmark`` it searches the ground truth (``BenchmarkEvaluator``, ``dataset``/``metric``);
    ``assisted=True`` then makes each proposal the proxy argmax of ``n_candidates`` candidates
    (G-RS / G-REA / G-RL). Each evaluated model is one trial of the Optuna study
    ``study_name`` at ``storage`` (user attrs ``backend="nni"``, the strategy, ...), so Optuna
    and NNI runs sit side by side; proxy scores go through the SQL score cache.

    All inputs are validated before the database is touched.

    Args:
        space: search space (object or registered name).
        proxy: proxy (object or name); may be None for a vanilla benchmark search.
        strategy: one of :data:`STRATEGIES`.
        n_trials: number of models NNI evaluates (benchmark queries, or proxy scores).
        batch: data for the proxy (default: 64 CIFAR-10 images, data seed 0).
        seed: seed of the strategy and of the proxy's weight initialisation.
        storage: SQLAlchemy URL (default ``$ZCNAS_STORAGE`` or ``sqlite:///zcnas.db``).
        study_name: default ``nni-<strategy>-<objective>-<space>-seed<seed>``.
        strategy_kwargs: options of NNI's strategy constructor (e.g. ``population_size``).
        benchmark: ground-truth benchmark (object or name) to search instead of the proxy.
        dataset: benchmark dataset.
        metric: benchmark metric.
        assisted: proxy-assisted search (needs ``benchmark`` and ``proxy``).
        n_candidates: candidates per proposal when assisted.
        device: where proxies run (``cpu``, ``cuda``, ``auto``).
        use_cache: read and write the SQL score cache.
        experiment_dir: run as an NNI ``NasExperiment`` with checkpoints and logs there
            (default: no files; the strategy runs directly on NNI's sequential engine).
        proxy_seed: weight-initialisation seed of the proxy (default: ``seed``); fix it to share
            proxy scores (and the score cache) between runs of different seeds.
        cost_model: simulated training seconds of a benchmark query (``train_seconds`` trial
            attribute) when the benchmark has no times: ``"auto"`` (the benchmark's
            ``cost_model(space)``), None, or an object with
            ``seconds(arch, dataset, metric)``.
        progress: a progress bar of evaluated models on stderr.

    Returns:
        :class:`NNIRun` with the study name and the evaluated architectures.

    Raises:
        NNINotInstalledError: NNI is missing.
        ZcnasError: bad strategy, option, combination or name (nothing is written).
    """
    require_nni()
    from zcnas.search import _nni_impl

    space = get_space(space) if isinstance(space, str) else space
    proxy = resolve(proxy) if isinstance(proxy, str) else proxy
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    kwargs = dict(strategy_kwargs or {})
    if strategy not in STRATEGIES:
        raise ZcnasError(f"unknown NNI strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if n_trials < 1:
        raise ZcnasError(f"n_trials must be at least 1, got {n_trials}")
    if assisted:
        if bench is None or proxy is None:
            raise ZcnasError("proxy-assisted search needs both a proxy and a benchmark "
                             "(--proxy NAME --benchmark nb201)")
        if strategy not in ASSISTED_STRATEGIES:
            raise ZcnasError(f"proxy-assisted search exists for {', '.join(ASSISTED_STRATEGIES)};"
                             f" not for {strategy}")
        if n_candidates < 1:
            raise ZcnasError(f"n_candidates must be at least 1, got {n_candidates}")
    elif bench is None and proxy is None:
        raise ZcnasError("give a proxy to search with (--proxy NAME) or a benchmark (--benchmark)")
    if bench is not None:
        _check_benchmark(space, bench, dataset, metric)
    categorical_distributions(space)
    device = resolve_device(device)
    uses_proxy = proxy is not None and (bench is None or assisted)
    if uses_proxy and batch is None:
        batch = load_batch("cifar10", 64, 0)
    scorer = None
    if uses_proxy:
        assert proxy is not None and batch is not None
        scorer = ProxyScorer(space, proxy, batch, seed=seed if proxy_seed is None else proxy_seed,
                             device=device)
    nni_strategy = _nni_impl.make_strategy(
        strategy, kwargs, seed=seed, assisted=assisted, space=space, scorer=scorer,
        n_candidates=n_candidates,
    )

    # validated: now touch the database
    if bench is not None:
        objective = f"benchmark:{bench.name}/{dataset}/{metric}"
        direction: Direction = "maximize"
    else:
        assert proxy is not None
        objective = f"proxy:{proxy.name}"
        direction = proxy.direction
    label = f"G-{strategy}" if assisted else strategy
    storage = storage or default_storage()
    if study_name is None:
        what = objective.split(":", 1)[1].replace("/", "-")
        extra = f"-{proxy.name}" if assisted and proxy is not None else ""
        study_name = f"nni-{label}-{what}{extra}-{space.name}-seed{seed}"
    import nni

    attrs: dict[str, Any] = {
        "backend": "nni", "strategy": label, "nni_strategy": strategy, "space": space.name,
        "objective": objective, "assisted": bool(assisted), "seed": seed,
        "strategy_kwargs": json.dumps(kwargs, sort_keys=True, default=str),
        "n_trials": n_trials, "zcnas_version": __version__, "nni_version": nni.__version__,
    }
    if scorer is not None:
        assert proxy is not None and batch is not None
        attrs.update(proxy=proxy.name, proxy_version=proxy.version,
                     proxy_params=params_json(proxy),
                     batch_source=batch.source, batch_size=len(batch), batch_id=batch.identity,
                     device=device, proxy_seed=scorer.seed)
    if bench is not None:
        attrs.update(benchmark=bench.name, dataset=dataset, metric=metric)
    if assisted:
        attrs["n_candidates"] = n_candidates
    if scorer is not None and use_cache:
        scorer.cache = ScoreCache(storage)
    recorder = StudyRecorder(storage, study_name, direction=direction, attrs=attrs)
    trial_attrs: dict[str, Any] = {"backend": "nni", "strategy": label, "seed": seed}
    if scorer is not None:
        assert proxy is not None
        trial_attrs.update(proxy=proxy.name, proxy_version=proxy.version)
    evaluator: _nni_impl._RecordingEvaluator
    if bench is not None:
        if cost_model == "auto":
            cost_model = bench.cost_model(space)
        evaluator = _nni_impl.BenchmarkEvaluator(
            space, bench, dataset=dataset, metric=metric, recorder=recorder,
            trial_attrs=trial_attrs, scorer=scorer, cost_model=cost_model,
        )
    else:
        assert scorer is not None
        evaluator = _nni_impl.ProxyEvaluator(scorer, recorder, trial_attrs)
    model_space = _nni_impl.ZcnasModelSpace(
        space, num_classes=batch.num_classes if batch is not None else 10,
    )
    start = time.perf_counter()
    with tqdm(total=n_trials, desc=f"nni {label}", unit="trial", disable=not progress,
              dynamic_ncols=True) as bar:
        evaluator.progress = bar
        _nni_impl.execute(model_space, evaluator, nni_strategy, n_trials=n_trials, seed=seed,
                          experiment_dir=experiment_dir)
    return NNIRun(
        study_name=study_name, storage=redact(storage), strategy=label, objective=objective,
        direction=direction, history=list(evaluator.history),
        seconds=time.perf_counter() - start,
    )
