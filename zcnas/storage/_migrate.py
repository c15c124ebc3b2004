"""Schema migrations of the zcnas_* tables (alembic, own version table)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
