"""The score cache: proxy scores in SQL, keyed by everything that determines them."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import hashlib
import json
import math
from typing import Any
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from zcnas.exceptions import StorageError
from zcnas.storage import _migrate
from zcnas.storage._models import ScoreModel
from zcnas.storage._retry import sanitized
from zcnas.storage._retry import storage_error
from zcnas.storage._retry import with_retry
from zcnas.storage._url import default_storage
from zcnas.storage._url import get_engine
from zcnas.storage._url import redact
from zcnas.version import __version__


T = TypeVar("T")


def params_hash(params: dict[str, Any]) -> str:
    """Stable 16-hex hash of a proxy's hyper-parameters."""
    blob = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ScoreKey:
    """Everything that determines a score."""

    space: str
    arch_key: str
    proxy: str
    proxy_version: str
    params_json: str
    batch_id: str
    seed: int

    @property
    def params_hash(self) -> str:
        return params_hash(json.loads(self.params_json))


@dataclass(frozen=True)
class ScoreRecord:
    """A stored (or freshly computed) score. ``value`` is None when ``status == "failed"``."""

    key: ScoreKey
    status: str
    value: float | None
    reason: str | None
    seconds: float
    device: str
    zcnas_version: str
    batch_source: str = ""
    batch_size: int = 0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "complete"


def _rollback(session: Session) -> None:
    """Roll back, ignoring a connection that is already gone (the server rolled it back)."""
    try:
        session.rollback()
    except SQLAlchemyError:
        pass


class ScoreCache:
    """Proxy scores in the ``zcnas_scores`` table of any SQLAlchemy database.

    Creating it upgrades the zcnas_* tables to the current schema (Optuna's tables, if any, are
    untouched). A lookup of a stored key is a hit; ``put`` of an existing key keeps the first
    value (several workers may race on the same key).
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_storage()
        self.engine = get_engine(self.url)
        doing = "creating or upgrading the zcnas tables"
        try:
            with_retry(lambda: _migrate.upgrade(self.engine, url=self.url), self.url, doing)
        except SQLAlchemyError as exc:
            raise storage_error(exc, self.url, doing) from sanitized(exc, self.url)
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"ScoreCache({redact(self.url)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One session: commit on success, roll back on error, errors as ``StorageError``
        (not retried: use :meth:`transaction` for that)."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except IntegrityError:
            _rollback(session)
            raise
        except SQLAlchemyError as exc:
            _rollback(session)
            raise storage_error(exc, self.url, "using the zcnas tables") \
                from sanitized(exc, self.url)
        finally:
            session.close()

    def transaction(self, fn: Callable[[Session], T], doing: str = "using the zcnas tables") -> T:
        """``fn(session)`` in one transaction (commit on success), the whole transaction retried
        on transient errors (:func:`zcnas.storage.with_retry`); a database error ends as one-line
        ``StorageError`` with a sanitized cause. ``IntegrityError`` propagates unchanged."""

        def attempt() -> T:
            session = Session(self.engine, expire_on_commit=False)
            try:
                out = fn(session)
                session.commit()
                return out
            except BaseException:
                _rollback(session)
                raise
            finally:
                session.close()

        try:
            return with_retry(attempt, self.url, doing)
        except (StorageError, IntegrityError):
            raise
        except SQLAlchemyError as exc:
            raise storage_error(exc, self.url, doing) from sanitized(exc, self.url)

    @staticmethod
    def _where(key: ScoreKey) -> list:
        return [
            ScoreModel.space == key.space, ScoreModel.arch_key == key.arch_key,
            ScoreModel.proxy == key.proxy, ScoreModel.proxy_version == key.proxy_version,
            ScoreModel.params_hash == key.params_hash, ScoreModel.batch_id == key.batch_id,
            ScoreModel.seed == key.seed,
        ]

    @staticmethod
    def _record(row: ScoreModel, key: ScoreKey) -> ScoreRecord:
        return ScoreRecord(
            key=key, status=row.status, value=row.value, reason=row.reason,
            seconds=row.seconds, device=row.device, zcnas_version=row.zcnas_version,
            batch_source=row.batch_source, batch_size=row.batch_size, cached=True,
        )

    def get(self, key: ScoreKey) -> ScoreRecord | None:
        row = self.transaction(lambda s: s.scalars(select(ScoreModel).where(*self._where(key)))
                               .first(), "reading the score cache")
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return self._record(row, key)

    def put(self, record: ScoreRecord) -> None:
        k = record.key
        value = record.value
        if value is not None and not math.isfinite(value):
            raise ValueError("non-finite scores are stored as failures (value=None, reason=...)")

        def add(s: Session) -> None:
            s.add(ScoreModel(
                space=k.space, arch_key=k.arch_key, proxy=k.proxy, proxy_version=k.proxy_version,
                params_hash=k.params_hash, params_json=k.params_json, batch_id=k.batch_id,
                batch_source=record.batch_source, batch_size=record.batch_size, seed=k.seed,
                status=record.status, value=value, reason=record.reason, seconds=record.seconds,
                device=record.device, zcnas_version=record.zcnas_version or __version__,
            ))

        try:
            # a retry after a commit whose acknowledgement was lost meets its own row: the
            # unique key makes the write idempotent
            self.transaction(add, "storing a score")
        except IntegrityError:
            pass  # another worker stored the same key first; keep its value

    def lookup_many(self, space: str, proxy: str, proxy_version: str, params_json: str,
                    batch_id: str, seed: int, arch_keys: Iterable[str] | None = None
                    ) -> dict[str, ScoreRecord]:
        """All stored records of one proxy configuration, by arch key."""
        ph = params_hash(json.loads(params_json))
        wanted = set(arch_keys) if arch_keys is not None else None
        out: dict[str, ScoreRecord] = {}
        rows = self.transaction(lambda s: s.scalars(select(ScoreModel).where(
            ScoreModel.space == space, ScoreModel.proxy == proxy,
            ScoreModel.proxy_version == proxy_version, ScoreModel.params_hash == ph,
            ScoreModel.batch_id == batch_id, ScoreModel.seed == seed,
        )).all(), "reading the score cache")
        for row in rows:
            if wanted is None or row.arch_key in wanted:
                key = ScoreKey(space, row.arch_key, proxy, proxy_version, params_json,
                               batch_id, seed)
                out[row.arch_key] = self._record(row, key)
        return out

    def count(self) -> int:
        return len(self.transaction(lambda s: s.scalars(select(ScoreModel.id)).all(),
                                    "counting scores"))
