"""The storage layer under faults: a full disk or a lost server is waited out for a bounded time
and then one line naming the fix (cause kept, password never shown); migrations and locks are
safe to race and never wait for ever; run rows of dead processes are marked ``killed``."""

from __future__ import annotations

from datetime import datetime
import os
from pathlib import Path
import subprocess
import sys
import textwrap
import threading
import time
import traceback

from conftest import failing_sql
from conftest import writes
import optuna
import pytest
from sqlalchemy import text
from sqlalchemy import update

from zcnas.exceptions import StorageError
from zcnas.storage import RETRY_ENV
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreKey
from zcnas.storage import ScoreRecord
from zcnas.storage import StudyLock
from zcnas.storage import get_engine
from zcnas.storage import list_runs
from zcnas.storage import make_storage
from zcnas.storage import retry_seconds
from zcnas.storage import start_run
from zcnas.storage._lock import _key64
from zcnas.storage._models import RunModel


ROOT = Path(__file__).resolve().parents[2]


def _record(arch: str = "a") -> ScoreRecord:
    key = ScoreKey("test-space", arch, "test-proxy", "1", "{}", "batch", 0)
    return ScoreRecord(key, "complete", 1.5, None, 0.1, "cpu", "test")


# --- a full disk (injected SQLite errors, as SQLite raises them) ----------------------------------
def test_a_disk_full_for_a_moment_is_waited_out(sqlite_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_ENV, "30")
    cache = ScoreCache(sqlite_url)
    rec = _record()
    with failing_sql(lambda s: s.startswith("INSERT INTO zcnas_scores"), times=3) as hits:
        cache.put(rec)
    assert len(hits) == 3  # it did fail three times, then the fourth attempt stored it
    stored = cache.get(rec.key)
    assert stored is not None and stored.value == 1.5


def test_a_disk_that_stays_full_ends_in_one_line_naming_the_fix(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_ENV, "0.5")
    cache = ScoreCache(sqlite_url)
    start = time.monotonic()
    with failing_sql(writes) as hits, pytest.raises(StorageError) as info:
        cache.put(_record())
    assert time.monotonic() - start < 10 and len(hits) >= 2  # retried, for a bounded time
    message = str(info.value)
    assert "\n" not in message
    assert "is full" in message and "free space" in message and "run the same command" in message
    assert info.value.__cause__ is not None  # the cause is kept (sanitized)
    assert "database or disk is full" in "".join(traceback.format_exception(info.value))


def test_optuna_storage_waits_out_a_full_disk_and_heartbeats_never_raise(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_ENV, "30")
    rdb = make_storage(sqlite_url, heartbeat_interval=1)
    study = optuna.create_study(storage=rdb)
    with failing_sql(writes, times=4) as hits:
        trial = study.ask()  # creating a trial: retried until the disk has room again
    assert len(hits) == 4 and study.trials[0].state == optuna.trial.TrialState.RUNNING
    monkeypatch.setenv(RETRY_ENV, "0")
    with failing_sql(writes):
        rdb.record_heartbeat(trial._trial_id)  # a missed beat, not an exception in a thread


def test_bad_retry_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_ENV, "soon")
    with pytest.raises(StorageError, match=f"{RETRY_ENV}='soon' must be a number"):
        retry_seconds()


# --- messages: the cause is kept, the password is not ---------------------------------------------
@pytest.mark.parametrize("url", [
    "postgresql+psycopg2://u:secret@127.0.0.1:1/x",  # nothing listens on port 1
    "sqlite:////nonexistent-zcnas-dir/sub/z.db",
])
def test_unreachable_database_keeps_a_sanitized_cause(url: str) -> None:
    with pytest.raises(StorageError, match="cannot open database") as info:
        get_engine(url)
    err = info.value
    assert err.__cause__ is not None, "the cause must be chained, not dropped (from None)"
    shown = "".join(traceback.format_exception(err))
    assert "OperationalError" in shown  # the driver's own error type is visible
    assert "secret" not in shown


# --- migrations race ---------------------------------------------------------------------------
RACER = textwrap.dedent('''
    import sys, time
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def slow_ddl(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("CREATE"):
            time.sleep(0.3)  # widen the window in which others see a half-made schema

    event.listen(Engine, "after_cursor_execute", slow_ddl)
    from zcnas.storage import ScoreCache
    url, t0 = sys.argv[1], float(sys.argv[2])
    while time.time() < t0:
        time.sleep(0.001)
    ScoreCache(url)
''')


@pytest.mark.slow
def test_migrations_are_safe_to_race(tmp_path: Path) -> None:
    """Three processes start on one fresh SQLite file at the same instant (twice)."""
    racer = tmp_path / "racer.py"
    racer.write_text(RACER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(2):
        url = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        t0 = time.time() + 6.0
        procs = [subprocess.Popen([sys.executable, str(racer), url, str(t0)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
        with get_engine(url).connect() as conn:
            tables = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
                         .scalars())
        assert {"zcnas_scores", "zcnas_runs", "zcnas_alembic_version"} <= tables


# --- the study lock ------------------------------------------------------------------------------
def _in_thread(fn, timeout: float) -> tuple[bool, BaseException | None]:  # noqa: ANN001
    """Run ``fn`` in a daemon thread; (finished in time, its exception)."""
    out: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            out[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive(), out[0]


def test_study_lock_is_reentrant_within_a_thread(storage_url: str) -> None:
    def nested() -> None:
        with StudyLock(storage_url, "study-a"), StudyLock(storage_url, "study-a"):
            with StudyLock(storage_url, "<schema>"):
                ScoreCache(storage_url)  # migrating takes the "<schema>" lock once more

    done, error = _in_thread(nested, 60)
    assert done, "nested StudyLock deadlocked"
    assert error is None


def _hold_lock_elsewhere(url: str, name: str) -> subprocess.Popen:
    """Another process that takes the lock of ``name`` and keeps it for 120 s."""
    code = textwrap.dedent(f'''
        import sys, time
        from zcnas.storage import StudyLock
        lock = StudyLock({url!r}, {name!r})
        lock.acquire()
        print("held", flush=True)
        time.sleep(120)
    ''')
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held", proc.stderr
    return proc


def test_waiting_for_a_lock_is_bounded(storage_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ScoreCache(storage_url)
    holder = _hold_lock_elsewhere(storage_url, "busy-study")
    try:
        monkeypatch.setenv("ZCNAS_LOCK_WAIT_SECONDS", "1")
        lock = StudyLock(storage_url, "busy-study")
        start = time.monotonic()
        done, error = _in_thread(lock.acquire, 60)
        assert done, "acquire waited for ever"
        assert isinstance(error, StorageError) and "ZCNAS_LOCK_WAIT_SECONDS" in str(error)
        assert time.monotonic() - start < 30
        assert "\n" not in str(error)
    finally:
        holder.kill()
        holder.communicate()
    with StudyLock(storage_url, "busy-study"):  # the holder died: free again
        pass


@pytest.mark.postgres
def test_a_lock_whose_session_died_is_released_quietly(postgres_url: str) -> None:
    lock = StudyLock(postgres_url, "dropped-session")
    lock.acquire()
    with get_engine(postgres_url).connect() as conn:  # the server ends the lock's session
        pid = lock._conn.execute(text("SELECT pg_backend_pid()")).scalar()
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        conn.commit()
    lock.release()  # no error: the lock went with the session
    with get_engine(postgres_url).connect() as conn:
        assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                            {"k": _key64("dropped-session")}).scalar()
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key64("dropped-session")})


# --- run rows of dead processes -------------------------------------------------------------------
def _run_row(cache: ScoreCache, **changes: object) -> int:
    run_id = start_run(cache, study_name="s", config_sha="x", config_json="{}",
                       zcnas_version="t", optuna_version="t", n_trials=1)
    cache.transaction(lambda s: s.execute(update(RunModel).where(RunModel.id == run_id)
                                          .values(**changes)))
    return run_id


def test_running_rows_of_dead_processes_are_marked_killed(sqlite_url: str) -> None:
    cache = ScoreCache(sqlite_url)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = _run_row(cache, pid=gone.pid)
    # the pid exists but its process started after the row: a reused pid, the run is gone
    reused = _run_row(cache, pid=os.getppid(), started_at=datetime(2000, 1, 1))
    alive = _run_row(cache, pid=os.getppid())
    elsewhere = _run_row(cache, pid=gone.pid, host="another-host")
    start_run(cache, study_name="s", config_sha="x", config_json="{}", zcnas_version="t",
              optuna_version="t", n_trials=1)  # the next run sweeps
    status = {r["id"]: r["status"] for r in list_runs(cache)}
    assert status[dead] == "killed" and status[reused] == "killed"
    assert status[alive] == "running" and status[elsewhere] == "running"
    rows = {r["id"]: r for r in list_runs(cache)}
    assert rows[dead]["finished_at"] is not None
