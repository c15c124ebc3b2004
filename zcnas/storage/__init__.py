"""SQL storage: zcnas's score cache and run records beside Optuna's own tables, in one
database; Optuna's RDB storage at the same URL; a cross-process lock per study."""

from zcnas.storage._cache import ScoreCache
from zcnas.storage._cache import ScoreKey
from zcnas.storage._cache import ScoreRecord
from zcnas.storage._cache import params_hash
from zcnas.storage._lock import StudyLock
from zcnas.storage._migrate import current_revision
from zcnas.storage._migrate import head_revision
from zcnas.storage._migrate import upgrade
from zcnas.storage._optuna import make_storage
from zcnas.storage._optuna import set_user_attrs
from zcnas.storage._runs import finish_run
from zcnas.storage._runs import list_runs
from zcnas.storage._runs import start_run
from zcnas.storage._url import DEFAULT_STORAGE
from zcnas.storage._url import default_storage
from zcnas.storage._url import get_engine
from zcnas.storage._url import redact
from zcnas.storage._url import tune_sqlite


__all__ = [
    "DEFAULT_STORAGE", "ScoreCache", "ScoreKey", "ScoreRecord", "StudyLock", "current_revision",
    "default_storage", "finish_run", "get_engine", "head_revision", "list_runs", "make_storage",
    "params_hash", "redact", "set_user_attrs", "start_run", "tune_sqlite", "upgrade",
]
