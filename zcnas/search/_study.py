"""Optuna studies in SQL beside the zcnas score cache, with heartbeats, retries and exact
trial counts across worker processes."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import logging
import time
from typing import Any
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages import fail_stale_trials
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from zcnas.exceptions import ZcnasError
from zcnas.storage import ScoreCache
from zcnas.storage import StudyLock
from zcnas.storage import default_storage
from zcnas.storage import make_storage
from zcnas.storage import redact
from zcnas.storage import set_user_attrs


_logger = logging.getLogger(__name__)


def set_trial_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """``trial.set_user_attr`` for every item of ``attrs``, in one transaction."""
    set_user_attrs(trial.storage, trial._trial_id, attrs)
    trial._cached_frozen_trial.user_attrs.update(attrs)


def _directions(values: Iterable[Any]) -> list[str]:
    return [v.name.lower() if hasattr(v, "name") else str(v).lower() for v in values]


def create_study(study_name: str, *, storage: str | RDBStorage | None = None,
                 directions: Sequence[str] = ("maximize",),
                 sampler: optuna.samplers.BaseSampler | None = None,
                 load_if_exists: bool = True, heartbeat_interval: int | None = 60,
                 grace_period: int | None = None, max_retry: int | None = 3,
                 score_cache: bool = True) -> optuna.Study:
    """Create (or load) ``study_name`` in SQL, with the zcnas score-cache tables in the same database.

    An existing study with other directions raises ``ZcnasError`` naming the fix (a new name or
    ``optuna delete-study``). ``storage`` is a URL (see :func:`make_storage`) or an
    ``RDBStorage``.
    """
    if isinstance(storage, RDBStorage):
        rdb, url = storage, storage.url
    else:
        url = storage or default_storage()
        rdb = make_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                           max_retry=max_retry)
    want = _directions(directions)
    if study_name in optuna.get_all_study_names(storage=rdb):
        study = optuna.load_study(study_name=study_name, storage=rdb, sampler=sampler)
        have = _directions(study.directions)
        if have != want:
            raise ZcnasError(
                f"study {study_name!r} in {redact(url)} already exists with direction(s) {have}, "
                f"but this run needs {want}; use another study name, or delete it with `optuna "
                f"delete-study --study-name {study_name} --storage <url>`"
            )
        if not load_if_exists:
            raise ZcnasError(f"study {study_name!r} already exists in {redact(url)}; use another "
                             f"name or load_if_exists=True")
    else:
        study = optuna.create_study(study_name=study_name, storage=rdb, sampler=sampler,
                                    directions=want, load_if_exists=True)
        have = _directions(study.directions)
        if have != want:  # created concurrently by another worker with other directions
            raise ZcnasError(f"study {study_name!r} was just created with direction(s) {have} by "
                             f"another process; this run needs {want}; use another study name")
    if score_cache:
        with StudyLock(url, "<schema>"):
            ScoreCache(url)
    return study


def load_or_create(study_name: str, **kwargs: Any) -> optuna.Study:
    """:func:`create_study` with ``load_if_exists=True`` (the resumable default)."""
    kwargs["load_if_exists"] = True
    return create_study(study_name, **kwargs)


@dataclass(frozen=True)
class TrialCounts:
    """Trial states of a study. ``finished`` counts COMPLETE, PRUNED and FAIL trials, except
    stale FAILs that were retried (their retry counts instead)."""

    complete: int
    pruned: int
    failed: int
    retried: int
    running: int
    waiting: int

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed - self.retried


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of trials that ``RetryHeartbeatStaleTrialCallback`` re-enqueued."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", []))
    return out


def trial_counts(study: optuna.Study) -> TrialCounts:
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    by_state = {s: 0 for s in TrialState}
    for t in trials:
        by_state[t.state] += 1
    n_retried = sum(1 for t in trials if t.number in retried and t.state == TrialState.FAIL)
    return TrialCounts(by_state[TrialState.COMPLETE], by_state[TrialState.PRUNED],
                       by_state[TrialState.FAIL], n_retried, by_state[TrialState.RUNNING],
                       by_state[TrialState.WAITING])


def _grace_period(study: optuna.Study) -> float:
    """Seconds after which a silent RUNNING trial is stale (60 s if heartbeats are off)."""
    backend = getattr(study._storage, "_backend", study._storage)
    interval = getattr(backend, "heartbeat_interval", None)
    grace = getattr(backend, "grace_period", None)
    return float(grace or 2 * (interval or 30))


class _ReleaseFirst:
    """The objective, releasing the allocation lock as soon as the trial exists."""

    def __init__(self, objective: Callable[[optuna.Trial], Any], lock: StudyLock | None) -> None:
        self.objective = objective
        self.lock = lock
        self.trial_number: int | None = None

    def __call__(self, trial: optuna.Trial) -> Any:
        self.trial_number = trial.number
        if self.lock is not None:
            self.lock.release()
        return self.objective(trial)


def _retry_interrupted(study: optuna.Study, number: int | None) -> None:
    """Ctrl-C failed the running trial: enqueue it again, as a stale trial would be."""
    if number is None:
        return
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is not None and trial.state == TrialState.FAIL:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback()(study, trial)


def optimize_exact(study: optuna.Study, objective: Callable[[optuna.Trial], Any], n_trials: int, *,
                   lock: StudyLock | None = None, poll_seconds: float = 1.0,
                   max_wait: float | None = None,
                   callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
                   ) -> int:
    """Run trials until the study holds exactly ``n_trials`` finished trials; return how many ran here.

    Resumable and safe with several workers (processes or machines) on one storage: under
    ``lock`` each worker fails stale trials (heartbeat), counts finished + running + waiting
    trials, and only then asks for a trial (a retried or enqueued one first), so the total is
    exact. When nothing is left to start but other workers' trials are RUNNING, it waits for them
    (they finish, or go stale and are retried here), at most ``max_wait`` seconds without progress
    (default: 3 grace periods + 30 s). A trial interrupted by Ctrl-C is FAIL and re-enqueued, like
    a stale one, so the next run evaluates it again.
    """
    if n_trials < 0:
        raise ZcnasError(f"n_trials must be >= 0, got {n_trials}")
    if max_wait is None:
        max_wait = 3 * _grace_period(study) + 30.0
    ran = 0
    last: TrialCounts | None = None
    last_change = time.monotonic()
    while True:
        if lock is not None:
            lock.acquire()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(study)
            counts = trial_counts(study)
            if counts.waiting > 0 or counts.finished + counts.running < n_trials:
                gated = _ReleaseFirst(objective, lock)
                try:
                    study.optimize(gated, n_trials=1, callbacks=callbacks, gc_after_trial=False)
                except KeyboardInterrupt:
                    _retry_interrupted(study, gated.trial_number)
                    raise
                ran += 1
                last_change = time.monotonic()
                continue
        finally:
            if lock is not None:
                lock.release()
        if counts.running == 0:
            return ran
        if counts != last:
            last, last_change = counts, time.monotonic()
        elif time.monotonic() - last_change > max_wait:
            _logger.warning("%d trial(s) of study %s still RUNNING after %.0f s without progress; "
                            "returning (rerun to finish them)", counts.running, study.study_name,
                            max_wait)
            return ran
        time.sleep(poll_seconds)


STUDY_ATTR = "zcnas_study"


def describe_study(study: optuna.Study, *, kind: str, space: str, objective: str,
                   metric_names: Sequence[str], benchmark: str | None = None,
                   dataset: str | None = None, metric: str | None = None,
                   sampler: str | None = None, assist: str = "none", backend: str = "optuna",
                   **extra: Any) -> None:
    """Record what a report needs in the study itself (once; a second call keeps the first):
    the user attribute ``zcnas_study`` (kind ``proxy`` or ``benchmark``, space, objective,
    ground truth benchmark/dataset/metric, sampler, assist mode, backend) and Optuna's metric
    names (optuna-dashboard's axis labels). Every entry point calls it: ``zcnas run``, the
    Python objectives, NNI runs and ``score-space``."""
    if STUDY_ATTR in study.user_attrs:
        return
    info = {"kind": kind, "space": space, "objective": objective, "benchmark": benchmark,
            "dataset": dataset, "metric": metric, "sampler": sampler or type(study.sampler).__name__,
            "assist": assist, "backend": backend, **extra}
    study.set_user_attr(STUDY_ATTR, info)
    names = list(metric_names)
    if len(names) == len(study.directions):
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", ExperimentalWarning)
            study.set_metric_names(names)


def study_info(study: optuna.Study) -> dict[str, Any]:
    """What the study records about itself (:func:`describe_study`), falling back to the study
    file of runs made before it existed; ``?`` for what is not known."""
    info = dict(study.user_attrs.get(STUDY_ATTR) or {})
    cfg = study.user_attrs.get("zcnas_config") or {}
    obj = cfg.get("objective", {})
    fallback = {
        "kind": obj.get("kind"), "space": (cfg.get("space") or {}).get("name"),
        "objective": obj.get("proxy") or obj.get("search_metric") or obj.get("metric"),
        "benchmark": obj.get("benchmark"), "dataset": obj.get("dataset"),
        "metric": obj.get("metric"), "sampler": (cfg.get("sampler") or {}).get("name"),
        "assist": (cfg.get("assist") or {}).get("mode"),
        "backend": study.user_attrs.get("backend"),
    }
    for k, v in fallback.items():
        if info.get(k) is None:
            info[k] = v
    if study.user_attrs.get("backend") == "nni":
        obj_attr = str(study.user_attrs.get("objective", ""))
        info.setdefault("kind", "benchmark" if obj_attr.startswith("benchmark:") else "proxy")
        info["sampler"] = info.get("sampler") or study.user_attrs.get("strategy")
    return info
