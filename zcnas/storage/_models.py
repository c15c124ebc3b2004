"""SQLAlchemy models of zcnas's own tables (all prefixed ``zcnas_``).

Optuna's tables in the same database are Optuna's: zcnas reads them only through Optuna's API.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone

from sqlalchemy import DateTime
from sqlalchemy import Float
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ScoreModel(Base):
    """One proxy score of one architecture on one data batch with one seed.

    ``status`` is ``"complete"`` (``value`` finite) or ``"failed"`` (``reason`` says why).
    """

    __tablename__ = "zcnas_scores"
    __table_args__ = (
        UniqueConstraint(
            "space", "arch_key", "proxy", "proxy_version", "params_hash", "batch_id", "seed",
            name="uq_zcnas_scores_key",
        ),
        Index("ix_zcnas_scores_lookup", "space", "proxy", "batch_id", "seed"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    space: Mapped[str] = mapped_column(String(64))
    arch_key: Mapped[str] = mapped_column(String(512))
    proxy: Mapped[str] = mapped_column(String(128))
    proxy_version: Mapped[str] = mapped_column(String(32))
    params_hash: Mapped[str] = mapped_column(String(16))
    params_json: Mapped[str] = mapped_column(Text)
    batch_id: Mapped[str] = mapped_column(String(64))
    batch_source: Mapped[str] = mapped_column(String(512))
    batch_size: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    seconds: Mapped[float] = mapped_column(Float)
    device: Mapped[str] = mapped_column(String(64))
    zcnas_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=_utcnow)


class RunModel(Base):
    """One ``run_study`` invocation (one worker): which study, config, code and host, and how it
    ended. Optuna's tables hold the trials; this holds what Optuna does not model."""

    __tablename__ = "zcnas_runs"
    __table_args__ = (Index("ix_zcnas_runs_study", "study_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_name: Mapped[str] = mapped_column(String(512))
    config_sha: Mapped[str] = mapped_column(String(16))
    config_json: Mapped[str] = mapped_column(Text)
    zcnas_version: Mapped[str] = mapped_column(String(32))
    optuna_version: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    n_trials_target: Mapped[int] = mapped_column(Integer)
    trials_run: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=_utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
