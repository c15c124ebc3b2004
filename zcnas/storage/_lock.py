"""A cross-process lock per study, held only while a worker allocates its next trial.

PostgreSQL: a session advisory lock; MySQL: ``GET_LOCK``; SQLite: ``flock`` on ``<db>.lock``
beside the database file. All are released by the operating system or the server when the
process dies, so a killed worker never leaves the study locked.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from zcnas.storage._url import get_engine


_logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _key64(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"zcnas-study:{name}".encode()).digest()[:8], "big",
                          signed=True)


class StudyLock:
    """Mutual exclusion between the workers of one study (``acquire``/``release``, re-entrant
    ``release``). ``kind`` says which mechanism is used (``none`` for in-memory SQLite)."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        self.study_name = study_name
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        self._thread_lock = threading.Lock()
        self._conn: Any = None
        self._fd: int | None = None
        self._held = False
        if backend == "postgresql":
            self.kind = "postgresql-advisory"
        elif backend in ("mysql", "mariadb"):
            self.kind = "mysql-get-lock"
        elif backend == "sqlite" and parsed.database not in (None, "", ":memory:") and fcntl:
            self.kind = "flock"
            self._path = Path(str(parsed.database)).expanduser().resolve().with_name(
                Path(str(parsed.database)).name + ".lock")
        else:
            self.kind = "none"
            if backend != "sqlite":
                _logger.warning("no cross-process lock for %s: parallel workers may run a few "
                                "trials more than n_trials", backend)

    def acquire(self) -> None:
        self._thread_lock.acquire()
        try:
            if self.kind == "flock":
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            elif self.kind in ("postgresql-advisory", "mysql-get-lock"):
                conn = get_engine(self.url).connect().execution_options(isolation_level="AUTOCOMMIT")
                if self.kind == "postgresql-advisory":
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _key64(self.study_name)})
                else:
                    conn.execute(text("SELECT GET_LOCK(:k, -1)"), {"k": f"zcnas:{self.study_name}"[:64]})
                self._conn = conn
        except BaseException:
            self._thread_lock.release()
            raise
        self._held = True

    def release(self) -> None:
        """Release if held (safe to call twice)."""
        if not self._held:
            return
        self._held = False
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
            if self._conn is not None:
                try:
                    if self.kind == "postgresql-advisory":
                        self._conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                           {"k": _key64(self.study_name)})
                    else:
                        self._conn.execute(text("SELECT RELEASE_LOCK(:k)"),
                                           {"k": f"zcnas:{self.study_name}"[:64]})
                finally:
                    self._conn.close()
                    self._conn = None
        finally:
            self._thread_lock.release()

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
