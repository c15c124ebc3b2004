"""Optuna's RDB storage at a zcnas URL: created safely by concurrent workers, tuned for
SQLite, with one-transaction trial attributes and errors that never show a password."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import json
import logging
from typing import Any
from typing import cast
import warnings

from optuna.exceptions import ExperimentalWarning
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages import RDBStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from zcnas.exceptions import StorageError
from zcnas.storage._lock import StudyLock
from zcnas.storage._retry import clean
from zcnas.storage._retry import sanitized
from zcnas.storage._retry import with_retry
from zcnas.storage._url import default_storage
from zcnas.storage._url import driver_url
from zcnas.storage._url import get_engine
from zcnas.storage._url import redact
from zcnas.storage._url import tune_sqlite


_logger = logging.getLogger(__name__)
_UPSERT: dict[str, Callable[[Any], sqlite.Insert | postgresql.Insert]] = {
    "sqlite": sqlite.insert, "postgresql": postgresql.insert}

# RDBStorage methods (and the private ones Optuna's _CachedStorage calls) whose transient
# database errors are retried; each is one transaction, so a retry repeats it whole
_RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_trial_user_attrs",
    "get_trial_system_attrs", "get_all_studies", "create_new_trial", "_create_new_trial",
    "set_trial_param", "_set_trial_param", "get_trial_param", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "get_trial_id_from_study_id_trial_number",
    "get_trial", "get_all_trials", "_get_trials", "get_best_trial", "_get_best_trial_id",
    "get_n_trials", "_get_stale_trial_ids",
)


def _clean(message: str, url: str) -> str:
    """First line of an error message, without the URL's password."""
    return clean(message, url)


class ResilientRDBStorage(RDBStorage):
    """Optuna's ``RDBStorage`` whose calls wait out a database outage: every storage call
    retries transient errors (:func:`zcnas.storage.with_retry`, ``$ZCNAS_DB_RETRY_SECONDS``)
    and then raises a one-line ``StorageError``. A heartbeat that cannot be written is skipped
    (the next one follows ``heartbeat_interval`` later; only a silence longer than the grace
    period makes the trial stale), so the heartbeat thread never dies with a traceback.
    """

    def _retried(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(super(), name)
        return with_retry(lambda: method(*args, **kwargs), self.url,
                          f"{name.strip('_').replace('_', ' ')} (Optuna storage)")

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        attempts = 0

        def attempt() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                return RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except UpdateFinishedTrialError:
                if attempts > 1 and RDBStorage.get_trial(self, trial_id).state == state:
                    return True  # the first attempt committed but its acknowledgement was lost
                raise

        return with_retry(attempt, self.url, "recording a trial's state (Optuna storage)")

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            RDBStorage.record_heartbeat(self, trial_id)
        except Exception as exc:  # a missed beat; the grace period covers a short outage
            _logger.debug("heartbeat of trial %d not recorded: %s", trial_id,
                          clean(str(exc), self.url))


def _make_retried(name: str) -> Any:
    def method(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self._retried(name, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = getattr(RDBStorage, name).__doc__
    return method


for _name in _RETRIED:
    if hasattr(RDBStorage, _name):
        setattr(ResilientRDBStorage, _name, _make_retried(_name))


def make_storage(url: str | None = None, *, heartbeat_interval: int | None = 60,
                 grace_period: int | None = None, max_retry: int | None = 3,
                 retry_connect: bool = False) -> RDBStorage:
    """Optuna storage (a :class:`ResilientRDBStorage`) at any SQLAlchemy URL (default
    :func:`zcnas.storage.default_storage`).

    With ``heartbeat_interval`` (seconds), a trial whose worker died stops beating; after
    ``grace_period`` (default twice the interval) the next worker marks it FAIL and
    ``RetryHeartbeatStaleTrialCallback(max_retry)`` enqueues it again with the same parameters.
    An unreachable or malformed URL raises ``StorageError`` (password hidden, cause kept)
    before anything is written; with ``retry_connect`` (a worker of a command that already
    reached the database) transient errors are retried first.
    """
    url = driver_url(url or default_storage())
    get_engine(url, retry=retry_connect)  # reachability, with a one-line redacted error
    backend = make_url(url).get_backend_name()
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        kwargs = {"heartbeat_interval": int(heartbeat_interval), "grace_period": grace_period,
                  "heartbeat_stale_trial_callback": callback}

    def build() -> RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            # several workers may start on a fresh database at once: create the schema in turn
            with StudyLock(url, "<schema>"):
                return ResilientRDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)

    try:
        rdb = with_retry(build, url, "opening the Optuna storage")
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(
            f"cannot use {redact(url)} as Optuna storage: {type(exc).__name__}: "
            f"{_clean(str(exc), url)}; check the URL and run `optuna storage upgrade --storage URL` "
            f"if the schema is old"
        ) from sanitized(exc, url)
    tune_sqlite(rdb.engine)
    return rdb


def set_user_attrs(storage: BaseStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Write all of ``attrs`` to a running trial: one multi-row upsert on SQLite/PostgreSQL RDB
    storage, ``set_trial_user_attr`` per key elsewhere. Same rows as Optuna writes itself."""
    backend = getattr(storage, "_backend", storage)  # Optuna's _CachedStorage wraps the RDB
    if not attrs or not isinstance(backend, RDBStorage) or backend.engine.name not in _UPSERT:
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    table = models.TrialUserAttributeModel
    rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
    stmt = _UPSERT[backend.engine.name](table).values(rows)
    stmt = stmt.on_conflict_do_update(index_elements=[table.trial_id, table.key],
                                      set_={"value_json": stmt.excluded.value_json})

    def write() -> None:
        with _create_scoped_session(backend.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            # Optuna's models declare Column, not Mapped: on a loaded row it is the TrialState
            backend.check_trial_is_updatable(trial_id, cast(TrialState, trial.state))
            session.execute(stmt)

    with_retry(write, backend.url, "storing trial attributes")




def trials_with_heartbeat(storage: BaseStorage, trial_ids: Sequence[int]) -> set[int] | None:
    """The ids among ``trial_ids`` that have a heartbeat row (Optuna's ``trial_heartbeats``
    table, which Optuna's public API does not expose); None if ``storage`` is not an RDB
    storage (nothing can be said)."""
    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, RDBStorage):
        return None
    if not trial_ids:
        return set()
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    table = models.TrialHeartbeatModel

    def read() -> set[int]:
        with _create_scoped_session(backend.scoped_session) as session:
            rows = session.query(table.trial_id).filter(table.trial_id.in_(list(trial_ids))).all()
            return {int(r[0]) for r in rows}

    return with_retry(read, backend.url, "reading heartbeats (Optuna storage)")
