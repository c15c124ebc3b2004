"""Optuna's RDB storage at a zcnas URL: created safely by concurrent workers, tuned for
SQLite, with one-transaction trial attributes and errors that never show a password."""

from __future__ import annotations

from collections.abc import Mapping
import json
import logging
from typing import Any
import warnings

from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage
from optuna.storages import RDBStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from zcnas.exceptions import StorageError
from zcnas.storage._lock import StudyLock
from zcnas.storage._url import default_storage
from zcnas.storage._url import driver_url
from zcnas.storage._url import get_engine
from zcnas.storage._url import redact
from zcnas.storage._url import tune_sqlite


_logger = logging.getLogger(__name__)
_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _clean(message: str, url: str) -> str:
    """First line of an error message, without the URL's password."""
    line = (message.strip().splitlines() or [""])[0][:200]
    try:
        password = make_url(url).password
    except Exception:
        password = None
    return line.replace(str(password), "***") if password else line


def make_storage(url: str | None = None, *, heartbeat_interval: int | None = 60,
                 grace_period: int | None = None, max_retry: int | None = 3) -> RDBStorage:
    """Optuna ``RDBStorage`` at any SQLAlchemy URL (default :func:`zcnas.storage.default_storage`).

    With ``heartbeat_interval`` (seconds), a trial whose worker died stops beating; after
    ``grace_period`` (default twice the interval) the next worker marks it FAIL and
    ``RetryHeartbeatStaleTrialCallback(max_retry)`` enqueues it again with the same parameters.
    An unreachable or malformed URL raises ``StorageError`` (password hidden) before anything is
    written.
    """
    url = driver_url(url or default_storage())
    get_engine(url)  # reachability, with a one-line redacted error
    backend = make_url(url).get_backend_name()
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            kwargs: dict[str, Any] = {}
            if heartbeat_interval is not None:
                kwargs = {
                    "heartbeat_interval": int(heartbeat_interval), "grace_period": grace_period,
                    "heartbeat_stale_trial_callback":
                        RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                }
            # several workers may start on a fresh database at once: create the schema in turn
            with StudyLock(url, "<schema>"):
                rdb = RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
            tune_sqlite(rdb.engine)
            return rdb
    except Exception as exc:
        raise StorageError(
            f"cannot use {redact(url)} as Optuna storage: {type(exc).__name__}: "
            f"{_clean(str(exc), url)}; check the URL and run `optuna storage upgrade --storage URL` "
            f"if the schema is old"
        ) from None


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
    with _create_scoped_session(backend.scoped_session, True) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        backend.check_trial_is_updatable(trial_id, trial.state)
        session.execute(stmt)


