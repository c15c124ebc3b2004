"""Optuna studies in SQL beside the zcnas score cache, with heartbeats, retries and exact
trial counts across worker processes."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import logging
import math
import time
from typing import Any
from typing import cast
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.exceptions import StorageInternalError
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages import fail_stale_trials
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from zcnas.exceptions import ZcnasError
from zcnas.proxies import Direction
from zcnas.storage import ScoreCache
from zcnas.storage import StudyLock
from zcnas.storage import as_storage_error
from zcnas.storage import default_storage
from zcnas.storage import make_storage
from zcnas.storage import redact
from zcnas.storage import set_user_attrs
from zcnas.storage import trials_with_heartbeat


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
                                    directions=cast("list[Direction]", want),  # Optuna checks them
                                    load_if_exists=True)
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


def _heartbeat_on(study: optuna.Study) -> bool:
    get = getattr(study._storage, "get_heartbeat_interval", None)
    return get is not None and get() is not None


def _retry_callback(study: optuna.Study) -> Callable[[optuna.Study, FrozenTrial], None]:
    """The storage's stale-trial callback (``RetryHeartbeatStaleTrialCallback(max_retry)`` for
    :func:`zcnas.storage.make_storage`), else one that retries at most 3 times."""
    get = getattr(study._storage, "get_heartbeat_stale_trial_callback", None)
    callback = get() if get is not None else None
    if callback is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            callback = RetryHeartbeatStaleTrialCallback(max_retry=3)
    return callback


def is_infrastructure_failure(trial: FrozenTrial) -> bool:
    """A FAIL trial that says nothing about its parameters: it has no ``fail_reason`` (every
    failure of the objective gets one, see :func:`optimize_exact`), so it was ended by a dead
    worker (heartbeat), Ctrl-C or the database."""
    return trial.state == TrialState.FAIL and "fail_reason" not in trial.user_attrs


def requeue(study: optuna.Study, trial: FrozenTrial, *,
            callback: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> bool:
    """Enqueue a retry of FAIL ``trial`` (same parameters, ``failed_trial``/``retry_history``
    system attributes, as ``RetryHeartbeatStaleTrialCallback`` does) unless one exists already;
    returns True if one was added. Call it under the study's lock: two workers must not both
    add a retry of one trial."""
    trials = study.get_trials(deepcopy=False)
    if trial.number in retried_numbers(trials):
        return False
    before = len(trials)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        (callback or _retry_callback(study))(study, trial)
    return len(study.get_trials(deepcopy=False)) > before


def repair(study: optuna.Study, *,
           callback: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> int:
    """Re-enqueue every infrastructure FAIL (:func:`is_infrastructure_failure`) that has no
    retry yet, within ``max_retry`` (of ``callback``, default the storage's stale-trial
    callback); returns how many were enqueued. A trial whose
    retries are spent stays FAIL and counts as finished (raise ``max_retry`` to try again)."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    todo = [t for t in trials if is_infrastructure_failure(t) and t.number not in retried]
    if not todo:
        return 0
    callback = callback or _retry_callback(study)
    return sum(requeue(study, t, callback=callback) for t in todo)


def fail_orphans(study: optuna.Study, seen: dict[int, float], grace: float) -> list[int]:
    """Fail (and retry, through the storage's stale-trial callback) RUNNING trials that never
    beat: created, then their worker died before the first heartbeat.

    Optuna's ``fail_stale_trials`` only fails trials with a heartbeat row that is older than the
    grace period (``RDBStorage._get_stale_trial_ids`` in optuna/optuna
    optuna/storages/_rdb/storage.py skips RUNNING trials without one, on purpose: optuna PR
    #4055 tests that a trial whose ``record_heartbeat`` was never called stays RUNNING), so such
    a trial would stay RUNNING for ever. A live worker
    writes its first heartbeat right after creating the trial, so a RUNNING trial that this
    process has seen without a heartbeat row for ``grace`` seconds (``seen``: trial id ->
    ``time.monotonic()`` of the first sighting, kept by the caller) is failed. The clock is this
    process's own, never ``datetime_start`` (the creating host's clock). Returns the numbers of
    the trials failed here. Only meaningful with heartbeats on; call it under the study lock.
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ids = {t._trial_id for t in running}
    for tid in list(seen):
        if tid not in ids:
            del seen[tid]
    if not running:
        return []
    beating = trials_with_heartbeat(study._storage, sorted(ids))
    if beating is None:
        return []
    now = time.monotonic()
    failed = []
    for t in running:
        if t._trial_id in beating:
            seen.pop(t._trial_id, None)
            continue
        if now - seen.setdefault(t._trial_id, now) < grace:
            continue
        try:
            if not study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue  # it finished (or another worker failed it) meanwhile
        seen.pop(t._trial_id, None)
        failed.append(t.number)
        _logger.warning("trial %d of study %s was RUNNING without a heartbeat for %.0f s (its "
                        "worker died before the first beat): failed and retried", t.number,
                        study.study_name, grace)
        frozen = study._storage.get_trial(t._trial_id)
        callback = _retry_callback(study)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            callback(study, frozen)
    return failed


def _nonfinite(value: Any) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        try:
            if not math.isfinite(float(v)):
                return True
        except (TypeError, ValueError):
            return True
    return False


def _taken_over(exc: BaseException) -> bool:
    """True if ``exc`` (or what it was raised from) says another worker ended the trial: the
    storage refused the update (``UpdateFinishedTrialError``), or Optuna's tell found it
    finished already (``ValueError("Cannot tell a FAIL trial.")``, optuna/study/_tell.py; the
    crash of optuna issue #5470 when a live trial was failed as stale)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, UpdateFinishedTrialError):
            return True
        if isinstance(cur, ValueError) and str(cur).startswith("Cannot tell a "):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ if cur.__cause__ is not None else cur.__context__
    return False


def _infrastructure(exc: BaseException) -> bool:
    """The database (or another worker) ended the trial, not its parameters."""
    return isinstance(exc, (UpdateFinishedTrialError, StorageInternalError)) or \
        as_storage_error(exc) is not None


class _Guarded:
    """The objective, releasing the allocation lock as soon as the trial exists, and sorting
    its failures: an exception of the objective, or a NaN/inf/None value without a reason,
    becomes ``fail_reason`` and a NaN value (Optuna records a FAIL, the run goes on); a
    database failure, another worker's takeover or Ctrl-C is remembered and raised."""

    def __init__(self, objective: Callable[[optuna.Trial], Any], lock: StudyLock | None,
                 n_values: int) -> None:
        self.objective = objective
        self.lock = lock
        self.n_values = n_values
        self.trial_number: int | None = None
        self.infra: BaseException | None = None
        self.interrupted = False

    def __call__(self, trial: optuna.Trial) -> Any:
        self.trial_number = trial.number
        if self.lock is not None:
            self.lock.release()
        try:
            value = self.objective(trial)
        except KeyboardInterrupt:
            self.interrupted = True
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            if _infrastructure(exc):
                self.infra = exc
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            return self._fail(trial, f"objective raised {type(exc).__name__}: {first}")
        if value is None or _nonfinite(value):
            if "fail_reason" not in trial.user_attrs:
                return self._fail(trial, f"objective returned {value!r}")
        return value

    def _fail(self, trial: optuna.Trial, reason: str) -> Any:
        try:
            set_trial_user_attrs(trial, {"fail_reason": reason})
        except Exception as exc:
            self.infra = exc
            raise
        _logger.warning("trial %d failed: %s", trial.number, reason)
        nan = float("nan")
        return nan if self.n_values == 1 else tuple(nan for _ in range(self.n_values))


class _QuietHandled(logging.Filter):
    """Drops Optuna's "Trial N failed ..." records (with a traceback) of a trial that zcnas
    handles itself: interrupted, or ended by the database."""

    def __init__(self, guarded: _Guarded) -> None:
        super().__init__()
        self.guarded = guarded

    def filter(self, record: logging.LogRecord) -> bool:
        g = self.guarded
        if not (g.interrupted or g.infra is not None) or g.trial_number is None:
            return True
        return not record.getMessage().startswith(f"Trial {g.trial_number} failed")


_OPTUNA_TRIAL_LOGGER = "optuna.study._optimize"  # where Optuna logs failed trials


def _requeue_number(study: optuna.Study, number: int | None, lock: StudyLock | None,
                    callback: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> None:
    """Under ``lock``: if trial ``number`` ended FAIL, enqueue its retry (once)."""
    if number is None:
        return
    if lock is not None:
        lock.acquire()
    try:
        trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is not None and trial.state == TrialState.FAIL:
            requeue(study, trial, callback=callback)
    finally:
        if lock is not None:
            lock.release()


def _retry_interrupted(study: optuna.Study, number: int | None,
                       lock: StudyLock | None = None) -> None:
    """Ctrl-C failed the running trial: enqueue it again, as a stale trial would be (not
    counted against ``max_retry``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        _requeue_number(study, number, lock, RetryHeartbeatStaleTrialCallback())


def optimize_exact(study: optuna.Study, objective: Callable[[optuna.Trial], Any], n_trials: int, *,
                   lock: StudyLock | None = None, poll_seconds: float = 1.0,
                   max_wait: float | None = None,
                   callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] | None = None,
                   ) -> int:
    """Run trials until the study holds exactly ``n_trials`` finished trials; return how many ran here.

    Resumable and safe with several workers (processes or machines) on one storage: under
    ``lock`` each worker fails stale trials (heartbeat, and trials that never beat:
    :func:`fail_orphans`), re-enqueues infrastructure failures (:func:`repair`), counts
    finished + running + waiting trials, and only then asks for a trial (a retried or enqueued
    one first), so the total is exact. When nothing is left to start but other workers' trials
    are RUNNING, it waits for them (they finish, or go stale and are retried here), at most
    ``max_wait`` seconds without progress (default: 3 grace periods + 30 s).

    Failures: an exception of the objective (or a NaN/inf value without a reason) is one FAIL
    trial with ``fail_reason``, counted as finished, and the run goes on. A trial the objective
    could not finish because of the database is not counted: it is re-enqueued (here if the
    database is back, else by the next run) and the ``StorageError`` (one line, after
    ``$ZCNAS_DB_RETRY_SECONDS`` of retries) is raised. A trial another worker failed as stale
    while it ran here (e.g. its heartbeats were lost in an outage) is left to that retry. A
    trial interrupted by Ctrl-C is FAIL and re-enqueued, so the next run evaluates it again.
    """
    if n_trials < 0:
        raise ZcnasError(f"n_trials must be >= 0, got {n_trials}")
    grace = _grace_period(study)
    if max_wait is None:
        max_wait = 3 * grace + 30.0
    n_values = len(study.directions)
    heartbeat = _heartbeat_on(study)
    orphans: dict[int, float] = {}
    trial_log = logging.getLogger(_OPTUNA_TRIAL_LOGGER)
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
            if heartbeat:
                fail_orphans(study, orphans, grace)
            repair(study)
            counts = trial_counts(study)
            if counts.waiting > 0 or counts.finished + counts.running < n_trials:
                guarded = _Guarded(objective, lock, n_values)
                quiet = _QuietHandled(guarded)
                trial_log.addFilter(quiet)
                try:
                    study.optimize(guarded, n_trials=1, callbacks=callbacks, gc_after_trial=False)
                except KeyboardInterrupt:
                    _retry_interrupted(study, guarded.trial_number, lock)
                    raise
                except Exception as exc:
                    if not _taken_over(exc):
                        error = as_storage_error(exc)
                        if error is None and guarded.infra is None:
                            raise
                        try:  # best effort: if the database is back, re-enqueue the trial now
                            _requeue_number(study, guarded.trial_number, lock)
                        except Exception as again:
                            _logger.debug("re-enqueueing trial %s failed: %s",
                                          guarded.trial_number, again)
                        if error is None:
                            raise
                        raise error from None
                    _logger.warning("trial %s of study %s was failed by another worker while it "
                                    "ran here (no heartbeat seen for %.0f s); its retry takes "
                                    "over", guarded.trial_number, study.study_name, grace)
                    last_change = time.monotonic()
                    continue
                finally:
                    trial_log.removeFilter(quiet)
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
