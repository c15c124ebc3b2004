"""Run records (table ``zcnas_runs``): one row per worker invocation of a study, with what
Optuna does not model (config hash, code versions, host, how the run ended)."""

from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import select

from zcnas.storage._cache import ScoreCache
from zcnas.storage._models import RunModel
from zcnas.storage._models import _utcnow


RUN_COLUMNS = ("id", "study_name", "config_sha", "zcnas_version", "optuna_version", "host", "pid",
               "status", "n_trials_target", "trials_run", "started_at", "finished_at")


def start_run(cache: ScoreCache, *, study_name: str, config_sha: str, config_json: str,
              zcnas_version: str, optuna_version: str, n_trials: int) -> int:
    """Insert a ``running`` row for this process and return its id."""
    row = RunModel(
        study_name=study_name, config_sha=config_sha, config_json=config_json,
        zcnas_version=zcnas_version, optuna_version=optuna_version,
        host=socket.gethostname()[:255], pid=os.getpid(), status="running",
        n_trials_target=n_trials, trials_run=0,
    )
    with cache.session() as s:
        s.add(row)
        s.flush()
        return int(row.id)


def finish_run(cache: ScoreCache, run_id: int, status: str, trials_run: int) -> None:
    """Mark run ``run_id`` as ended with ``status`` (finished, interrupted, failed)."""
    with cache.session() as s:
        row = s.scalars(select(RunModel).where(RunModel.id == run_id)).one()
        row.status, row.trials_run, row.finished_at = status, trials_run, _utcnow()


def list_runs(cache: ScoreCache, study_name: str | None = None) -> list[dict[str, Any]]:
    """The run rows (all, or of one study), oldest first, as dicts of :data:`RUN_COLUMNS`."""
    with cache.session() as s:
        q = select(RunModel).order_by(RunModel.id)
        if study_name is not None:
            q = q.where(RunModel.study_name == study_name)
        return [{c: getattr(r, c) for c in RUN_COLUMNS} for r in s.scalars(q).all()]
