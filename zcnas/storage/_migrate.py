"""Schema migrations of the zcnas_* tables (alembic, own version table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.engine import Engine

from zcnas.storage._lock import StudyLock


_SCRIPT_DIR = Path(__file__).resolve().parent / "alembic"
VERSION_TABLE = "zcnas_alembic_version"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPT_DIR))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(engine: Engine, revision: str = "head", url: str | None = None) -> None:
    """Bring the zcnas_* tables to ``revision``; idempotent and safe to race: processes that
    start on a fresh database at once migrate in turn under the ``"<schema>"``
    :class:`~zcnas.storage.StudyLock` of ``url`` (default: the engine's URL), and each checks
    the revision again once it holds the lock."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    url = url or engine.url.render_as_string(hide_password=False)
    with StudyLock(url, "<schema>"):
        if revision == "head" and current_revision(engine) == head_revision():
            return  # another process migrated while this one waited
        cfg = _config()
        target = _transactional(engine)
        try:
            with target.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            if target is not engine:
                target.dispose()


def _transactional(engine: Engine) -> Engine:
    """An engine whose transactions include DDL. Python's sqlite3 driver commits each CREATE
    TABLE on its own, so a migration interrupted midway (a full disk before the version row is
    written) would leave tables that the next attempt cannot create again; on SQLite the
    migration runs on a separate engine that issues ``BEGIN`` itself (the recipe of SQLAlchemy's
    pysqlite documentation, "Serializable isolation / Savepoints / Transactional DDL"), so it
    is all or nothing. Other databases (PostgreSQL) are transactional already."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine
    own = create_engine(engine.url, connect_args={"timeout": 60})

    @event.listens_for(own, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(own, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return own
