"""SQL storage: zcnas's score cache beside Optuna's own tables, in one database."""

from zcnas.storage._cache import ScoreCache
from zcnas.storage._cache import ScoreKey
from zcnas.storage._cache import ScoreRecord
from zcnas.storage._cache import params_hash
from zcnas.storage._migrate import current_revision
from zcnas.storage._migrate import head_revision
from zcnas.storage._migrate import upgrade
from zcnas.storage._url import DEFAULT_STORAGE
from zcnas.storage._url import default_storage
from zcnas.storage._url import get_engine
from zcnas.storage._url import redact
from zcnas.storage._url import tune_sqlite


__all__ = [
    "DEFAULT_STORAGE", "ScoreCache", "ScoreKey", "ScoreRecord", "current_revision",
    "default_storage", "get_engine", "head_revision", "params_hash", "redact", "tune_sqlite",
    "upgrade",
]
