"""A cross-process lock per study, held only while a worker allocates its next trial.

PostgreSQL: a session advisory lock; MySQL: ``GET_LOCK``; SQLite: ``flock`` on ``<db>.lock``
beside the database file (one lock file for every study of the database). All are released by
the operating system or the server when the process dies, so a killed worker never leaves the
study locked; if the server restarts while a worker holds its lock, the lock is gone with the
session and releasing it is a no-op.

Re-entrant within a thread: taking a lock this thread already holds (the same study, or any
study of one SQLite file) only counts, so library code may take the ``"<schema>"`` lock inside
a caller that holds it. Every wait is bounded: a lock not obtained within
``$ZCNAS_LOCK_WAIT_SECONDS`` (default 3600 s; a warning is logged each minute) raises
``StorageError``; connecting for it retries transient errors like every database call
(:func:`zcnas.storage.with_retry`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
import threading
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from zcnas.exceptions import StorageError
from zcnas.storage._retry import with_retry
from zcnas.storage._url import get_engine
from zcnas.storage._url import redact


_logger = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_WAIT_ENV = "ZCNAS_LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT = 3600.0

# identity of a lock -> [thread id, depth, the StudyLock that really holds it] in this process
_HELD: dict[str, list[Any]] = {}
_HELD_GUARD = threading.Lock()
_IDENTITY_LOCKS: dict[str, threading.Lock] = {}


def _key64(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"zcnas-study:{name}".encode()).digest()[:8], "big",
                          signed=True)


def lock_wait_seconds() -> float:
    """``$ZCNAS_LOCK_WAIT_SECONDS`` (default 3600): the longest wait for a study lock."""
    raw = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_WAIT
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StorageError(f"{LOCK_WAIT_ENV}={raw!r} must be a number of seconds, e.g. "
                           f"{LOCK_WAIT_ENV}=3600") from None


class StudyLock:
    """Mutual exclusion between the workers of one study (``acquire``/``release``, re-entrant
    ``release``). ``kind`` says which mechanism is used (``none`` for in-memory SQLite)."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        self.study_name = study_name
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        self._conn: Any = None
        self._fd: int | None = None
        self._held = False
        if backend == "postgresql":
            self.kind = "postgresql-advisory"
            self._identity = f"pg:{url}:{_key64(study_name)}"
        elif backend in ("mysql", "mariadb"):
            self.kind = "mysql-get-lock"
            self._identity = f"mysql:{url}:{study_name}"
        elif backend == "sqlite" and parsed.database not in (None, "", ":memory:") and fcntl:
            self.kind = "flock"
            self._path = Path(str(parsed.database)).expanduser().resolve().with_name(
                Path(str(parsed.database)).name + ".lock")
            self._identity = f"flock:{self._path}"
        else:
            self.kind = "none"
            self._identity = f"none:{url}:{study_name}"
            if backend != "sqlite":
                _logger.warning("no cross-process lock for %s: parallel workers may run a few "
                                "trials more than n_trials", backend)
        with _HELD_GUARD:
            self._thread_lock = _IDENTITY_LOCKS.setdefault(self._identity, threading.Lock())

    # --- acquiring ------------------------------------------------------------------------------
    def acquire(self) -> None:
        me = threading.get_ident()
        with _HELD_GUARD:
            entry = _HELD.get(self._identity)
            if entry is not None and entry[0] == me:  # this thread holds it already
                entry[1] += 1
                self._held = True
                return
        wait = lock_wait_seconds()
        if not self._thread_lock.acquire(timeout=max(wait, 0.001)):
            raise self._timeout(wait)
        try:
            self._acquire_os(wait)
        except BaseException:
            self._close_fd()
            self._drop_conn()
            self._thread_lock.release()
            raise
        with _HELD_GUARD:
            _HELD[self._identity] = [me, 1, self]
        self._held = True

    def _timeout(self, waited: float) -> StorageError:
        return StorageError(
            f"waited {waited:.0f} s for the lock of study {self.study_name!r} in "
            f"{redact(self.url)}; another worker holds it (a hung process?): stop it, or set "
            f"{LOCK_WAIT_ENV} to wait longer")

    def _acquire_os(self, wait: float) -> None:
        if self.kind == "none":
            return
        start = time.monotonic()
        next_note = start + 60.0
        pause = 0.005
        while True:
            if self._try_once():
                return
            now = time.monotonic()
            if now - start > wait:
                raise self._timeout(now - start)
            if now > next_note:
                next_note = now + 60.0
                _logger.warning("waiting %.0f s for the lock of study %s (held by another "
                                "worker)", now - start, self.study_name)
            time.sleep(pause)
            pause = min(pause * 1.5, 0.2)

    def _try_once(self) -> bool:
        if self.kind == "flock":
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        def attempt() -> bool:
            if self._conn is None:
                self._conn = get_engine(self.url).connect().execution_options(
                    isolation_level="AUTOCOMMIT")
            try:
                if self.kind == "postgresql-advisory":
                    got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                             {"k": _key64(self.study_name)}).scalar()
                else:
                    got = self._conn.execute(text("SELECT GET_LOCK(:k, 0)"),
                                             {"k": f"zcnas:{self.study_name}"[:64]}).scalar()
            except Exception:
                self._drop_conn()
                raise
            return bool(got)

        return with_retry(attempt, self.url, f"taking the lock of study {self.study_name!r}")

    # --- releasing ------------------------------------------------------------------------------
    def release(self) -> None:
        """Release if held (safe to call twice)."""
        if not self._held:
            return
        self._held = False
        with _HELD_GUARD:
            entry = _HELD.get(self._identity)
            if entry is None:  # pragma: no cover - defensive
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[self._identity]
            holder: StudyLock = entry[2]
        holder._release_os()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor also drops its flock

    def _release_os(self) -> None:
        try:
            if self._fd is not None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                finally:
                    self._close_fd()
            if self._conn is not None:
                try:
                    if self.kind == "postgresql-advisory":
                        self._conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                           {"k": _key64(self.study_name)})
                    else:
                        self._conn.execute(text("SELECT RELEASE_LOCK(:k)"),
                                           {"k": f"zcnas:{self.study_name}"[:64]})
                except Exception as exc:  # the session is gone, and its lock with it
                    _logger.debug("releasing the lock of %s: %s", self.study_name, exc)
                finally:
                    self._drop_conn()
        finally:
            self._thread_lock.release()

    def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # a dead connection: nothing to close
                _logger.debug("closing a lock connection: %s", exc)

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
