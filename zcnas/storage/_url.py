"""Storage URLs: the default, password redaction, and engines with clear errors."""

from __future__ import annotations

import os

import sqlalchemy
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

from zcnas.exceptions import StorageError


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


def get_engine(url: str) -> Engine:
    """A cached engine for ``url``; raises ``StorageError`` (password hidden) if unusable."""
    if url in _ENGINES:
        return _ENGINES[url]
    try:
        parsed = make_url(url)
    except Exception:
        raise StorageError(
            f"malformed database URL {redact(url)!r}; use e.g. sqlite:///zcnas.db or "
            f"postgresql+psycopg2://user@127.0.0.1:5432/db"
        ) from None
    kwargs: dict = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["connect_args"] = {"connect_timeout": 10} if "psycopg" in parsed.drivername else {}
    try:
        engine = sqlalchemy.create_engine(parsed, **kwargs)
        with engine.connect():
            pass
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(
            f"cannot open database {redact(url)}: {first[:200]}; check the URL, that the "
            f"server is running and reachable, and that its driver is installed"
        ) from None
    _ENGINES[url] = engine
    return engine
