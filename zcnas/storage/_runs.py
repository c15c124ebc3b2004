"""Run records (table ``zcnas_runs``): one row per worker invocation of a study, with what
Optuna does not model (config hash, code versions, host, how the run ended).

``status``: ``running`` while the process runs, then ``finished``, ``interrupted`` (Ctrl-C),
``failed`` (an error ended it, e.g. the database stayed unreachable) or ``killed``: the process
is gone without having recorded its end (SIGKILL, a crash, or the database was unreachable when
it stopped). A ``killed`` row is marked by the next run on the same host, which finds the row's
process dead (or its pid taken by a younger process); rows of other hosts are left alone.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone
import os
from pathlib import Path
import socket
from typing import Any

from sqlalchemy import select

from zcnas.storage._cache import ScoreCache
from zcnas.storage._models import RunModel
from zcnas.storage._models import _utcnow


RUN_COLUMNS = ("id", "study_name", "config_sha", "zcnas_version", "optuna_version", "host", "pid",
               "status", "n_trials_target", "trials_run", "started_at", "finished_at")
RUN_STATUSES = ("running", "finished", "interrupted", "failed", "killed")


def _host() -> str:
    return socket.gethostname()[:255]


def _process_start(pid: int) -> float | None:
    """Start time (epoch seconds) of process ``pid`` from Linux ``/proc``; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after "pid (comm)"
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def process_alive(pid: int, since: datetime | None = None) -> bool:
    """True if process ``pid`` of this host exists and (when known) started no later than
    ``since`` (naive UTC), i.e. is not a younger process that reuses the pid."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if since is not None:
        started = _process_start(pid)
        row_time = since.replace(tzinfo=timezone.utc).timestamp()
        if started is not None and started > row_time + 2.0:
            return False
    return True


def mark_dead_runs(cache: ScoreCache) -> list[int]:
    """Mark ``killed`` every ``running`` row of this host whose process is gone; returns their
    ids."""
    host = _host()

    def sweep(s: Any) -> list[int]:
        rows = s.scalars(select(RunModel).where(RunModel.status == "running",
                                                RunModel.host == host)).all()
        dead = []
        for row in rows:
            if row.pid == os.getpid() or process_alive(row.pid, row.started_at):
                continue
            row.status, row.finished_at = "killed", _utcnow()
            dead.append(int(row.id))
        return dead

    return cache.transaction(sweep, "checking earlier runs")


def start_run(cache: ScoreCache, *, study_name: str, config_sha: str, config_json: str,
              zcnas_version: str, optuna_version: str, n_trials: int) -> int:
    """Mark this host's dead ``running`` rows ``killed`` (:func:`mark_dead_runs`), then insert
    a ``running`` row for this process and return its id."""
    mark_dead_runs(cache)

    def insert(s: Any) -> int:
        row = RunModel(
            study_name=study_name, config_sha=config_sha, config_json=config_json,
            zcnas_version=zcnas_version, optuna_version=optuna_version, host=_host(),
            pid=os.getpid(), status="running", n_trials_target=n_trials, trials_run=0,
        )
        s.add(row)
        s.flush()
        return int(row.id)

    return cache.transaction(insert, "recording the run")


def finish_run(cache: ScoreCache, run_id: int, status: str, trials_run: int) -> None:
    """Mark run ``run_id`` as ended with ``status`` (finished, interrupted, failed)."""
    if status not in RUN_STATUSES:
        raise ValueError(f"status must be one of {RUN_STATUSES}, got {status!r}")

    def update(s: Any) -> None:
        row = s.scalars(select(RunModel).where(RunModel.id == run_id)).one()
        row.status, row.trials_run, row.finished_at = status, trials_run, _utcnow()

    cache.transaction(update, "recording the end of the run")


def list_runs(cache: ScoreCache, study_name: str | None = None) -> list[dict[str, Any]]:
    """The run rows (all, or of one study), oldest first, as dicts of :data:`RUN_COLUMNS`."""

    def read(s: Any) -> list[dict[str, Any]]:
        q = select(RunModel).order_by(RunModel.id)
        if study_name is not None:
            q = q.where(RunModel.study_name == study_name)
        return [{c: getattr(r, c) for c in RUN_COLUMNS} for r in s.scalars(q).all()]

    return cache.transaction(read, "reading the runs")
