"""Storage URLs: the default, password redaction, and engines with clear errors."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

from zcnas.exceptions import StorageError
from zcnas.storage._retry import clean
from zcnas.storage._retry import sanitized
from zcnas.storage._retry import with_retry


DEFAULT_STORAGE = "sqlite:///zcnas.db"


def default_storage() -> str:
    """``$ZCNAS_STORAGE`` or ``sqlite:///zcnas.db`` (in the working directory)."""
    return os.environ.get("ZCNAS_STORAGE", DEFAULT_STORAGE)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print or log)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


_ENGINES: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def tune_sqlite(engine: Engine) -> Engine:
    """A file-backed SQLite engine in write-ahead-log mode with ``synchronous=NORMAL``.

    Each commit then appends to the log instead of syncing the database file: several times
    faster per trial, readers never block the writer, and a killed process loses nothing that
    was committed (only a power cut can drop the last commits; the file is never corrupted).
    The database keeps ``-wal``/``-shm`` files beside it; copy all three, or checkpoint first.
    Other engines are returned unchanged. Connections opened before the call are discarded.
    """
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        if not event.contains(engine, "connect", _sqlite_pragmas):
            event.listen(engine, "connect", _sqlite_pragmas)
            engine.dispose()
    return engine


def _default_driver(parsed: Any) -> Any:
    """A plain ``postgresql://`` URL means psycopg 3 to SQLAlchemy 2, but the ``postgres`` extra
    installs psycopg2: use it when psycopg 3 is absent (same database, same server)."""
    if parsed.drivername != "postgresql":
        return parsed
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is None:
            raise StorageError(f"{redact(str(parsed))} needs a PostgreSQL driver: pip install "
                               f"'zcnas[postgres]' (psycopg2; then postgresql+psycopg2://... "
                               f"or plain postgresql:// both work)")
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


def driver_url(url: str) -> str:
    """``url`` with the driver zcnas will use spelled out (plain ``postgresql://`` becomes
    ``postgresql+psycopg2://`` when only psycopg2 is installed); the password is kept."""
    try:
        parsed = make_url(url)
    except Exception:
        return url
    fixed = _default_driver(parsed)
    return url if fixed is parsed else fixed.render_as_string(hide_password=False)


def get_engine(url: str, *, retry: bool = False) -> Engine:
    """A cached engine for ``url``; raises ``StorageError`` (password hidden, cause kept as a
    sanitized copy) if unusable.

    The first connection of this process to ``url`` fails at once (a wrong URL or a server that
    is not running is reported without waiting), unless ``retry``: the caller knows the database
    was reachable (e.g. a worker the command started after connecting), so transient errors are
    retried for ``$ZCNAS_DB_RETRY_SECONDS`` (:func:`zcnas.storage.with_retry`).
    """
    if url in _ENGINES:
        return _ENGINES[url]
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StorageError(
            f"malformed database URL {redact(url)!r}; use e.g. sqlite:///zcnas.db or "
            f"postgresql+psycopg2://user@127.0.0.1:5432/db"
        ) from sanitized(exc, url)
    parsed = _default_driver(parsed)
    kwargs: dict = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["connect_args"] = {"connect_timeout": 10} if "psycopg" in parsed.drivername else {}

    def connect() -> Engine:
        engine = tune_sqlite(sqlalchemy.create_engine(parsed, **kwargs))
        with engine.connect():
            pass
        return engine

    try:
        engine = with_retry(connect, url, "connecting") if retry else connect()
    except StorageError:
        raise
    except Exception as exc:
        first = clean(str(exc), url) or type(exc).__name__
        raise StorageError(
            f"cannot open database {redact(url)}: {first}; check the URL, that the "
            f"server is running and reachable, and that its driver is installed"
        ) from sanitized(exc, url)
    _ENGINES[url] = engine
    return engine
