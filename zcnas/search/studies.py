"""Study files: a TOML file declares a whole search; :func:`run_study` runs it (resumably).

Example (``studies/smoke.toml``)::

    device = "cpu"

    [study]
    name = "smoke"
    storage = "sqlite:///zcnas.db"   # any SQLAlchemy URL; default $ZCNAS_STORAGE
    n_trials = 6                     # total finished trials the study ends with
    seed = 0                         # or seeds = [0, 1, 2]: one study per seed, "<name>-seed<N>"

    [space]
    name = "nb201"

    [objective]
    kind = "proxy"                   # or "benchmark"
    proxy = "params"

    [sampler]
    name = "TPESampler"              # any optuna.samplers class
    kwargs = { n_startup_trials = 3 }

    [data]
    source = "synthetic"
    batch_size = 8

Every key is checked before anything is written: an unknown section, key, sampler or sampler
argument is a one-line error that names the allowed ones. Rerunning the same file continues the
same study(ies) until ``n_trials`` trials are finished; trials of killed workers are failed
(heartbeat) and retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import json
import logging
import os
from typing import Any
from typing import cast

import optuna
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial
from tqdm.auto import tqdm

from zcnas.benchmarks import get_benchmark
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import ZcnasError
from zcnas.scoring import resolve
from zcnas.scoring import resolve_device
from zcnas.search._config import StudyConfigError
from zcnas.search._config import read_toml
from zcnas.search._objectives import BenchmarkObjective
from zcnas.search._objectives import ProxyObjective
from zcnas.search._objectives import probe_key
from zcnas.search._prescreen import Mode
from zcnas.search._prescreen import ProxyPrescreenSampler
from zcnas.search._prescreen import warmup
from zcnas.search._report import report
from zcnas.search._run_config import RunConfig
from zcnas.search._run_config import load_run_config
from zcnas.search._run_config import make_sampler
from zcnas.search._run_config import resume_seed
from zcnas.search._run_config import sampler_class
from zcnas.search._run_config import sampler_names
from zcnas.search._study import create_study
from zcnas.search._study import describe_study
from zcnas.search._study import optimize_exact
from zcnas.search._study import trial_counts
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import StudyLock
from zcnas.storage import default_storage
from zcnas.storage import finish_run
from zcnas.storage import list_runs
from zcnas.storage import make_storage
from zcnas.storage import redact
from zcnas.storage import start_run
from zcnas.version import __version__


_logger = logging.getLogger(__name__)
__all__ = [
    "RunConfig", "StudyConfigError", "StudyResult", "config_sha", "load_config", "make_sampler",
    "public_config", "read_toml", "report", "run_study", "runs", "sampler_class",
    "sampler_names",
]

load_config = load_run_config


# --- building (no storage writes) ---------------------------------------------------------------
@dataclass
class _Built:
    cfg: RunConfig
    batch: Batch | None
    device: str
    directions: list[str] = field(default_factory=list)


def _build(cfg: RunConfig) -> _Built:
    """Resolve every name and load the data; raises before any storage is touched."""
    obj, assist, data = cfg.objective, cfg.assist, cfg.data
    space = get_space(cfg.space.name, **cfg.space.params)
    device = resolve_device(cfg.device)
    needs_batch = obj.kind == "proxy" or assist.mode != "none" or assist.warmup > 0
    if obj.kind == "proxy":
        resolve(obj.proxy or "", **obj.proxy_params)
        for name in obj.objectives[1:]:
            if not name.startswith("bench:"):
                resolve(name)
        if obj.benchmark:
            bench = get_benchmark(obj.benchmark, **obj.benchmark_params)
            bench.validate(probe_key(space, bench), dataset=obj.dataset, metric=obj.metric)
    if assist.proxy:
        resolve(assist.proxy, **assist.proxy_params)
    for seed in cfg.seeds:
        make_sampler(cfg, seed)
    batch = load_batch(data.source, data.batch_size, data.seed, data.num_classes) \
        if needs_batch else None
    built = _Built(cfg, batch, device)
    objective = _objective(built, None)
    if isinstance(objective, BenchmarkObjective):
        objective.check()
    built.directions = objective.directions
    return built


def _objective(built: _Built, cache: ScoreCache | None) -> ProxyObjective | BenchmarkObjective:
    cfg = built.cfg
    obj = cfg.objective
    space = get_space(cfg.space.name, **cfg.space.params)
    if obj.kind == "proxy":
        assert built.batch is not None
        return ProxyObjective(space, resolve(obj.proxy or "", **obj.proxy_params), built.batch,
                              seed=obj.init_seed, device=built.device, cache=cache,
                              objectives=obj.objectives, benchmark=obj.benchmark and get_benchmark(
                                  obj.benchmark, **obj.benchmark_params), dataset=obj.dataset)
    return BenchmarkObjective(
        space, get_benchmark(obj.benchmark or "", **obj.benchmark_params), dataset=obj.dataset,
        metric=obj.metric, search_metric=obj.search_metric,
        cost_model=None if obj.cost_model == "none" else "auto", cache=cache,
    )


def _sampler(built: _Built, seed: int, cache: ScoreCache, n_existing: int = 0) -> BaseSampler:
    """The study's sampler; resuming a study of ``n_existing`` trials reseeds it
    (:func:`~zcnas.search._run_config.resume_seed`) so it does not re-propose the first run's
    architectures."""
    cfg = built.cfg
    base = make_sampler(cfg, seed, n_existing)
    a = cfg.assist
    if a.mode == "none":
        return base
    assert built.batch is not None
    return ProxyPrescreenSampler(
        base, get_space(cfg.space.name, **cfg.space.params),
        resolve(a.proxy or "", **a.proxy_params), built.batch, n_candidates=a.n_candidates,
        mode=cast(Mode, a.mode), random_prob=a.random_prob, cache=cache,
        seed=resume_seed(seed, n_existing),  # type: ignore[arg-type]
        proposals=a.proposals, population=a.population, tournament=a.tournament,  # type: ignore[arg-type]
        device=built.device, init_seed=a.init_seed,
    )


# --- running ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyResult:
    """What one study holds after :func:`run_study`."""

    study_name: str
    storage: str  # redacted
    n_trials: int
    finished: int
    complete: int
    failed: int
    ran_now: int
    best_value: float | list[float] | None
    best_arch: str | None


def public_config(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as stored in the database (study attrs, zcnas_runs): storage URL redacted."""
    return load_run_config(cfg).public()


def config_sha(cfg: RunConfig | Mapping[str, Any], seed: int | None = None) -> str:
    """See :meth:`RunConfig.sha`."""
    return load_run_config(cfg).sha(seed)


def _check_existing(url: str, rdb: Any, built: _Built) -> None:
    """Refuse before writing if a study of the same name was made with other directions/config."""
    existing = set(optuna.get_all_study_names(storage=rdb))
    for seed, name in zip(built.cfg.seeds, built.cfg.study_names):
        if name not in existing:
            continue
        sha = built.cfg.sha(seed)
        study = optuna.load_study(study_name=name, storage=rdb)
        have = [d.name.lower() for d in study.directions]
        if have != built.directions:
            raise ZcnasError(
                f"study {name!r} in {redact(url)} already exists with direction(s) {have}, but "
                f"this config needs {built.directions}; change [study] name or delete it with "
                f"`optuna delete-study --study-name {name} --storage <url>`"
            )
        old = study.user_attrs.get("zcnas_config_sha")
        if old is not None and old != sha:
            raise ZcnasError(
                f"study {name!r} in {redact(url)} was started from a different configuration "
                f"(sha {old} vs {sha}); change [study] name to start a new study"
            )


def run_study(path_or_config: str | os.PathLike[str] | Mapping[str, Any] | RunConfig, *,
              n_trials: int | None = None, storage: str | None = None,
              progress: bool = True) -> list[StudyResult]:
    """Run (or continue) the study(ies) of a study file until each holds ``n_trials`` finished
    trials.

    ``n_trials``/``storage`` override ``[study]``. Safe to run in several processes at once on
    one storage (the total stays exact) and to rerun after a crash (nothing finished is lost; a
    killed worker's RUNNING trial is failed after the grace period and retried). ``progress``:
    a bar of finished trials per study on stderr.
    """
    cfg = load_run_config(path_or_config)
    if n_trials is not None:
        if n_trials < 1:
            raise StudyConfigError(f"--n-trials must be at least 1, got {n_trials}")
        cfg = cfg.replace("study", n_trials=n_trials)
    if storage is not None:
        cfg = cfg.replace("study", storage=storage)
    st = cfg.study
    built = _build(cfg)
    url = st.storage or default_storage()
    rdb = make_storage(url, heartbeat_interval=st.heartbeat_interval,
                       grace_period=st.grace_period, max_retry=st.max_retry)
    _check_existing(url, rdb, built)
    with StudyLock(url, "<schema>"):
        cache = ScoreCache(url)
    return [_run_one(built, seed, name, url, rdb, cache, progress)
            for seed, name in zip(cfg.seeds, cfg.study_names)]


def _run_one(built: _Built, seed: int, name: str, url: str, rdb: Any, cache: ScoreCache,
             progress: bool = True) -> StudyResult:
    cfg = built.cfg
    n_trials = cfg.study.n_trials
    objective = _objective(built, cache)
    study = create_study(name, storage=rdb, directions=built.directions,
                         sampler=_sampler(built, seed, cache), score_cache=False)
    n_existing = len(study.get_trials(deepcopy=False))
    if n_existing:  # a resumed study: a fresh sequence, not a replay of the first run's
        study.sampler = _sampler(built, seed, cache, n_existing)
    lock = StudyLock(url, name)
    with lock:
        if "zcnas_config_sha" not in study.user_attrs:
            study.set_user_attr("zcnas_config_sha", cfg.sha(seed))
            study.set_user_attr("zcnas_config", cfg.public())
            study.set_user_attr("zcnas_seed", seed)
        obj = cfg.objective
        describe_study(study, kind=obj.kind, space=cfg.space.name,
                       objective=(obj.proxy if obj.kind == "proxy" else
                                  obj.search_metric or obj.metric) or "?",
                       metric_names=([obj.proxy or "proxy", *obj.objectives[1:]]
                                     if obj.kind == "proxy" else
                                     [obj.search_metric or obj.metric]),
                       benchmark=obj.benchmark, dataset=obj.dataset, metric=obj.metric,
                       sampler=cfg.sampler.name, assist=cfg.assist.mode)
        a = cfg.assist
        if a.warmup > 0 and "zcnas_warmup" not in study.user_attrs:
            assert built.batch is not None
            warmup(study, get_space(cfg.space.name, **cfg.space.params),
                   resolve(a.proxy or "", **a.proxy_params), built.batch, pool=a.warmup,
                   top_k=min(a.warmup_top_k, n_trials), seed=seed,
                   cache=cache, device=built.device, init_seed=a.init_seed)
    run_id = start_run(cache, study_name=name, config_sha=cfg.sha(seed),
                       config_json=json.dumps(cfg.public(), sort_keys=True),
                       zcnas_version=__version__, optuna_version=optuna.__version__,
                       n_trials=n_trials)
    ran, status = 0, "failed"
    done = trial_counts(study).finished
    bar = tqdm(total=n_trials, initial=min(done, n_trials), desc=name, unit="trial",
               disable=not progress or done >= n_trials, dynamic_ncols=True)

    def tick(_s: Study, _t: FrozenTrial) -> None:
        bar.update(1)

    try:
        ran = optimize_exact(study, objective, n_trials, lock=lock,
                             poll_seconds=min(1.0, cfg.study.heartbeat_interval / 2),
                             callbacks=[tick])
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        bar.close()
        try:
            finish_run(cache, run_id, status, ran)
        except ZcnasError as exc:  # the database is gone: the next run marks the row killed
            _logger.warning("could not record the end of run %d (%s): %s", run_id, status, exc)
    counts = trial_counts(study)
    best_value: Any = None
    best_arch = None
    if counts.complete:
        if len(built.directions) == 1:
            best = study.best_trial
            best_value, best_arch = best.value, best.user_attrs.get("arch_key")
        else:
            best_value = [list(t.values) for t in study.best_trials]
    return StudyResult(name, redact(url), n_trials, counts.finished, counts.complete,
                       counts.failed - counts.retried, ran, best_value, best_arch)


def runs(storage: str, study_name: str | None = None) -> list[dict[str, Any]]:
    """The ``zcnas_runs`` rows (one per worker invocation), oldest first."""
    return list_runs(ScoreCache(storage), study_name)
