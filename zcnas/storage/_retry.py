"""Bounded retries of transient database errors, and the one-line ``StorageError`` they end in.

Transient: the server restarted or dropped the connection (PostgreSQL ``OperationalError`` /
``InterfaceError``, a connection SQLAlchemy invalidated), a locked SQLite file, or a full disk
(SQLite ``database or disk is full`` / ``disk I/O error``, PostgreSQL ``No space left on
device``): the same call may succeed a few seconds later. Everything else (a constraint, a
missing table, a bug) is raised at once.

Policy: a database this process has never reached is reported at once by
:func:`zcnas.storage.get_engine` (a wrong URL must not wait a minute); once reached, every call
through :func:`with_retry` retries transient errors for ``$ZCNAS_DB_RETRY_SECONDS`` (default
60) counted from the first failure of the outage, so the calls of one outage share one deadline
instead of each waiting the whole time. Then it raises ``StorageError`` with one line that names
the cause and the fix; its ``__cause__`` is a sanitized copy of the original chain (types,
messages without the password, tracebacks), so the cause is kept and no password is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import logging
import os
import re
import sqlite3
import threading
import time
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from zcnas.exceptions import StorageError


_logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_ENV = "ZCNAS_DB_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 60.0
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "disk i/o error",
                     "database or disk is full", "unable to open database file")
_DISK_FULL = ("database or disk is full", "no space left on device", "could not extend file",
              "disk full", "could not write to file")

_down_since: dict[str, float] = {}  # url -> monotonic time of the first failure of this outage
_local = threading.local()  # .depth: nested with_retry calls retry only at the outermost one


def retry_seconds() -> float:
    """``$ZCNAS_DB_RETRY_SECONDS`` (default 60): how long an outage is waited out."""
    text = os.environ.get(RETRY_ENV, "").strip()
    if not text:
        return DEFAULT_RETRY_SECONDS
    try:
        value = float(text)
    except ValueError:
        raise StorageError(f"{RETRY_ENV}={text!r} must be a number of seconds, e.g. "
                           f"{RETRY_ENV}=60") from None
    if value < 0:
        raise StorageError(f"{RETRY_ENV} must be >= 0, got {value}; e.g. {RETRY_ENV}=60")
    return value


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, outermost first (each once)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ if cur.__cause__ is not None else cur.__context__


def _psycopg_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg2  # type: ignore[import-untyped,import-not-found]  # optional extra, no stubs
    except ImportError:
        return ()
    return (psycopg2.OperationalError, psycopg2.InterfaceError)


def _transient_one(e: BaseException) -> bool:
    if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, sa_exc.TimeoutError):  # no pooled connection came free
        return True
    if isinstance(e, sqlite3.OperationalError):
        msg = str(e).lower()
        return any(m in msg for m in _SQLITE_TRANSIENT)
    if isinstance(e, _psycopg_errors()):
        return True
    return False


def is_transient(exc: BaseException) -> bool:
    """True if a transient database error (see the module docstring) is in ``exc``'s chain.
    A ``StorageError`` zcnas already raised is final: not transient."""
    for e in chain(exc):
        if isinstance(e, StorageError):
            return False
        if _transient_one(e):
            return True
    return False


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc``'s chain says the disk holding the database is full."""
    for e in chain(exc):
        if type(e).__name__ == "DiskFull":  # psycopg2.errors.DiskFull (SQLSTATE 53100)
            return True
        if any(m in str(e).lower() for m in _DISK_FULL):
            return True
    return False


def _password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return make_url(url).password
    except Exception:
        return None


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def clean(message: str, url: str | None = None, limit: int = 200) -> str:
    """First line of ``message``, without ``url``'s password (nor that of any URL written in
    the message itself)."""
    line = (str(message).strip().splitlines() or [""])[0]
    password = _password(url)
    if password:
        line = line.replace(str(password), "***")
    return _URL_PASSWORD.sub(r"\1***@", line)[:limit]


class DatabaseErrorCause(Exception):
    """A sanitized stand-in for a database exception (``Type: message`` without the password),
    chained under a ``StorageError`` so that the cause stays visible."""


def sanitized(exc: BaseException, url: str | None = None) -> DatabaseErrorCause:
    """A copy of ``exc``'s chain as :class:`DatabaseErrorCause` objects: the original types and
    messages (password replaced by ``***``) and tracebacks."""
    links = list(chain(exc))[:8]
    out: DatabaseErrorCause | None = None
    for e in reversed(links):
        name = f"{type(e).__module__}.{type(e).__qualname__}"
        copy = DatabaseErrorCause(f"{name}: {clean(str(e), url, 500)}").with_traceback(
            e.__traceback__)
        copy.__cause__ = out
        out = copy
    assert out is not None
    return out


def _where(url: str | None) -> str:
    if not url:
        return "the database"
    from zcnas.storage._url import redact

    return redact(url)


def storage_error(exc: BaseException, url: str | None, doing: str, waited: float | None = None
                  ) -> StorageError:
    """The one-line ``StorageError`` for a database failure while ``doing`` (cause chained by
    the caller: ``raise storage_error(...) from sanitized(exc, url)``)."""
    root = next((e for e in chain(exc) if _transient_one(e)), exc)
    detail = clean(f"{type(root).__name__}: {root}", url)
    again = "finished work is stored; run the same command again"
    if is_disk_full(exc):
        return StorageError(f"the disk holding {_where(url)} is full while {doing} ({detail}); "
                            f"free space, then {again}")
    waited_text = "" if waited is None else f" for {waited:.0f} s"
    if is_transient(exc):
        return StorageError(
            f"lost {_where(url)}{waited_text} while {doing} ({detail}); check that the database "
            f"server is running and reachable, then {again} (set {RETRY_ENV} to wait longer)")
    return StorageError(f"database error on {_where(url)} while {doing}: {detail}")


def as_storage_error(exc: BaseException) -> StorageError | None:
    """The ``StorageError`` in ``exc``'s chain, or a new one if a transient database error is
    in it (for errors that surface through a library, e.g. Optuna's ``StorageInternalError``);
    None when the database is not involved."""
    for e in chain(exc):
        if isinstance(e, StorageError):
            return e
    if is_transient(exc):
        return storage_error(exc, None, "using it")
    return None


def with_retry(fn: Callable[[], T], url: str, doing: str) -> T:
    """``fn()``, retrying transient database errors until ``$ZCNAS_DB_RETRY_SECONDS`` after the
    outage began; then ``StorageError`` (one line, sanitized cause). Other errors are raised
    unchanged. Nested calls retry only at the outermost level."""
    depth = getattr(_local, "depth", 0)
    if depth:
        return fn()
    delay, warned = 0.1, False
    while True:
        _local.depth = 1
        try:
            result = fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            now = time.monotonic()
            began = _down_since.setdefault(url, now)
            budget = retry_seconds()
            if now - began + delay > budget:
                raise storage_error(exc, url, doing, now - began) from sanitized(exc, url)
            if not warned:
                warned = True
                root = next((e for e in chain(exc) if _transient_one(e)), exc)
                _logger.warning("database %s unavailable while %s (%s: %s); retrying for up to "
                                "%.0f s", _where(url), doing, type(root).__name__,
                                clean(str(root), url, 120), budget - (now - began))
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        finally:
            _local.depth = 0
        _down_since.pop(url, None)
        return result
