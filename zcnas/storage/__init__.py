"""SQL storage: zcnas's score cache and run records beside Optuna's own tables, in one
database; Optuna's RDB storage at the same URL; a cross-process lock per study."""

from zcnas.storage._cache import ScoreCache
from zcnas.storage._cache import ScoreKey
from zcnas.storage._cache import ScoreRecord
from zcnas.storage._cache import params_hash
from zcnas.storage._lock import StudyLock
from zcnas.storage._lock import lock_wait_seconds
from zcnas.storage._migrate import current_revision
from zcnas.storage._migrate import head_revision
from zcnas.storage._migrate import upgrade
from zcnas.storage._optuna import ResilientRDBStorage
from zcnas.storage._optuna import make_storage
from zcnas.storage._optuna import set_user_attrs
from zcnas.storage._optuna import trials_with_heartbeat
from zcnas.storage._retry import RETRY_ENV
from zcnas.storage._retry import as_storage_error
from zcnas.storage._retry import is_transient
from zcnas.storage._retry import retry_seconds
from zcnas.storage._retry import sanitized
from zcnas.storage._retry import storage_error
from zcnas.storage._retry import with_retry
from zcnas.storage._runs import RUN_STATUSES
from zcnas.storage._runs import finish_run
from zcnas.storage._runs import list_runs
from zcnas.storage._runs import mark_dead_runs
from zcnas.storage._runs import start_run
from zcnas.storage._url import DEFAULT_STORAGE
from zcnas.storage._url import default_storage
from zcnas.storage._url import get_engine
from zcnas.storage._url import redact
from zcnas.storage._url import tune_sqlite


__all__ = [
    "DEFAULT_STORAGE", "RETRY_ENV", "RUN_STATUSES", "ResilientRDBStorage", "ScoreCache",
    "ScoreKey", "ScoreRecord", "StudyLock", "as_storage_error", "current_revision",
    "default_storage", "finish_run", "get_engine", "head_revision", "is_transient", "list_runs",
    "lock_wait_seconds", "make_storage", "mark_dead_runs", "params_hash", "redact",
    "retry_seconds", "sanitized", "set_user_attrs", "start_run", "storage_error",
    "trials_with_heartbeat", "tune_sqlite", "upgrade", "with_retry",
]
