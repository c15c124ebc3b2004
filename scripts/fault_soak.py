#!/usr/bin/env python3
"""Fault soak of ``zcnas score-space`` on PostgreSQL (issue 18): no score lost, none doubled.

What it does (bounded in time and in loops; all traffic on 127.0.0.1):

1. starts a throw-away PostgreSQL with ``scripts/pg_local.sh``; as root its data directory is a
   small tmpfs mounted here (so that the disk can really fill up), else a plain directory and
   the disk-fill step is skipped (it says so);
2. runs ``zcnas score-space`` with ``--workers 3`` over a slice of NB201, scoring with
   ``slow_test`` (tests/slowproxy.py: the parameter count after ``--delay`` seconds, so that
   faults land mid-trial) and, while it runs, in this order with random gaps (each fault only
   once the workers have scored two more cells since the previous one, so it lands mid-work):
   SIGKILL of one worker, a database restart, SIGKILL of the command's whole process group
   (then the command is started again, as a user would), the disk filled up (a file written
   into the tmpfs until it is full, kept until the server logs "No space left on device" and
   3 s more; if the server shuts itself down on the full disk, it is started again once space
   is free), SIGKILL of one worker, a second database restart, SIGKILL of one worker;
3. reruns the same command until it exits 0 (at most ``--reruns`` times);
4. reads the database back and prints: cells expected, cells with exactly one stored score,
   lost, duplicated (a cell with more than one score row or more than one COMPLETE trial).

Exit status 0 only if lost = 0 and duplicated = 0 and the last run exited 0.

    sudo .venv/bin/python scripts/fault_soak.py            # default: ~2-4 minutes
    .venv/bin/python scripts/fault_soak.py --slice 0:120 --budget 200
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
PG = ROOT / "scripts" / "pg_local.sh"
CLI = "import slowproxy, sys; from zcnas.cli import main; sys.exit(main(sys.argv[1:]))"
FAULTS = ("kill-worker", "restart-db", "kill-group", "fill-disk", "kill-worker", "restart-db",
          "kill-worker")


def log(t0: float, message: str) -> None:
    print(f"[{time.monotonic() - t0:6.1f} s] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget
        self.rng = random.Random(args.seed)
        self.base = Path(tempfile.mkdtemp(prefix="zcnas-soak-", dir="/tmp"))
        self.base.chmod(0o755)
        self.pgdir = self.base / "pg"
        self.pgdir.mkdir()
        self.mounted = False
        self.port = free_port()
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self.runs: list[int] = []
        self.tracebacks = 0
        self.done_faults: list[str] = []
        self.score_seed = self.rng.randrange(1, 2**30)
        self._engine: Any = None

    # --- the database -----------------------------------------------------------------------
    def mount(self) -> str:
        if os.geteuid() != 0:
            return "not root: no tmpfs, the disk-fill step is skipped"
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.args.tmpfs_mb}m,mode=0755",
                            "tmpfs", str(self.pgdir)], capture_output=True, text=True)
        if r.returncode != 0:
            return f"mount failed ({r.stderr.strip()}): the disk-fill step is skipped"
        self.mounted = True
        return f"database directory on a {self.args.tmpfs_mb} MiB tmpfs at {self.pgdir}"

    def pg(self, *cmd: str) -> str:
        r = subprocess.run(["bash", str(PG), *cmd], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"fault_soak: pg_local.sh {' '.join(cmd)} failed: {r.stderr}")
        return r.stdout.strip()

    def pg_start(self) -> None:
        self.url = self.pg("start", str(self.pgdir), str(self.port))

    def pg_stop(self) -> None:
        self.pg("stop", str(self.pgdir))

    def no_space(self) -> int:
        try:
            return (self.pgdir / "postgres.log").read_text(errors="replace").count(
                "No space left on device")
        except OSError:
            return 0

    def pg_running(self) -> bool:
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        cmd = [str(bindir / "pg_ctl"), "-D", str(self.pgdir / "data"), "status"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True).returncode == 0

    # --- the command ------------------------------------------------------------------------
    def command(self) -> list[str]:
        a = self.args
        return [sys.executable, "-c", CLI, "score-space", "--proxy", "slow_test",
                "--storage", self.url, "--slice", a.slice, "--workers", str(a.workers),
                "--seed", str(self.score_seed), "--data", "synthetic", "--batch-size", "8",
                "--heartbeat-interval", "2", "--grace-period", "6", "--max-retry", "50",
                "--no-progress"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}",
                "SLOW_SECONDS": str(self.args.delay), "OMP_NUM_THREADS": "1",
                "ZCNAS_DB_RETRY_SECONDS": str(self.args.retry_seconds)}

    def launch(self) -> None:
        work = self.base / "work"
        work.mkdir(exist_ok=True)
        self.out = open(work / f"run{len(self.runs) + 1}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(self.command(), cwd=work, env=self.env(), stdout=self.out,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        log(self.t0, f"started score-space run {len(self.runs) + 1} (pid {self.proc.pid})")

    def reap(self) -> int | None:
        """The exit code if the command ended (and its log checked), else None."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return None
        self.out.close()
        text = Path(self.out.name).read_text()
        self.tracebacks += text.count("Traceback")
        last = [line for line in text.splitlines() if line.strip()][-2:]
        log(self.t0, f"run {len(self.runs) + 1} exited {code}: {' | '.join(last)[:300]}")
        self.runs.append(code)
        self.proc = None
        return code

    def workers(self) -> list[int]:
        assert self.proc is not None
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid and b"spawn_main" in cmdline:
                out.append(int(entry.name))
        return out

    def complete(self) -> int | None:
        """COMPLETE trials of the slice's study so far (None while the database is down)."""
        from sqlalchemy import create_engine
        from sqlalchemy import text

        if self._engine is None:
            self._engine = create_engine(self.url, pool_pre_ping=True,
                                         connect_args={"connect_timeout": 5})
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(text(
                    "SELECT COUNT(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
                    "WHERE s.study_name LIKE :n AND t.state = 'COMPLETE'"),
                    {"n": f"%:seed{self.score_seed}:%"}).scalar() or 0)
        except Exception:  # down, or the tables do not exist yet
            return None

    # --- faults -----------------------------------------------------------------------------
    def fault(self, kind: str) -> bool:
        """Apply one fault; False if it could not be applied now (retried later)."""
        if kind == "kill-worker":
            pids = self.workers() if self.proc is not None else []
            if not pids:
                return False
            pid = self.rng.choice(pids)
            os.kill(pid, signal.SIGKILL)
            log(self.t0, f"FAULT SIGKILL of worker {pid}")
        elif kind == "kill-group":
            if self.proc is None or not self.workers():
                return False
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            log(self.t0, f"FAULT SIGKILL of the process group {self.proc.pid}")
            self.reap()
            self.launch()
        elif kind == "restart-db":
            self.pg_stop()
            log(self.t0, f"FAULT database stopped; down for {self.args.outage:.0f} s")
            time.sleep(self.args.outage)
            self.pg_start()
            log(self.t0, "database started again")
        elif kind == "fill-disk":
            if not self.mounted:
                log(self.t0, "FAULT fill-disk skipped: no tmpfs")
                self.done_faults.append("fill-disk (skipped: no tmpfs)")
                return True
            filler = self.pgdir / "filler"
            written = 0
            with open(filler, "wb") as f:
                block = b"\0" * (1 << 20)
                try:
                    while True:
                        f.write(block)
                        f.flush()
                        written += len(block)
                except OSError:
                    pass
            free = shutil.disk_usage(self.pgdir).free
            before = self.no_space()
            log(self.t0, f"FAULT disk full: wrote {written >> 20} MiB, {free} bytes free; "
                         f"holding until the server reports it (at most "
                         f"{self.args.full_seconds:.0f} s)")
            until = time.monotonic() + self.args.full_seconds
            while time.monotonic() < until and self.no_space() == before:
                time.sleep(0.5)
            if self.no_space() > before:
                time.sleep(3.0)  # let the workers meet it too
            filler.unlink()
            log(self.t0, f"space freed; the server logged {self.no_space()} 'No space left on "
                         f"device' error(s) so far")
            time.sleep(2.0)
            if not self.pg_running():
                log(self.t0, "the server had shut itself down on the full disk: starting it")
                self.pg_start()
                kind = "fill-disk (server stopped itself, started again)"
        self.done_faults.append(kind)
        return True

    # --- the soak ---------------------------------------------------------------------------
    def run(self) -> int:
        log(self.t0, self.mount())
        self.pg_start()
        log(self.t0, f"PostgreSQL at {self.url}")
        self.launch()
        faults = list(FAULTS)
        progress = 0
        next_at = time.monotonic() + self.rng.uniform(*self.args.gap)
        while faults and time.monotonic() < self.deadline:
            time.sleep(0.5)
            if self.proc is not None and self.reap() is not None:
                if self.runs[-1] == 0:
                    log(self.t0, "the slice finished before every fault was applied; "
                                 "use a larger --slice or a longer --delay")
                    break
                self.launch()
                continue
            done = self.complete()
            # a fault lands mid-work: only once the workers have scored cells since the last one
            if time.monotonic() >= next_at and done is not None and done >= progress + 2:
                if self.fault(faults[0]):
                    faults.pop(0)
                    progress = self.complete() or done
                next_at = time.monotonic() + self.rng.uniform(*self.args.gap)
        if faults:
            log(self.t0, f"not applied (time or slice ran out): {', '.join(faults)}")
        # rerun to completion
        for _ in range(self.args.reruns + 1):
            if self.proc is None:
                if self.runs and self.runs[-1] == 0:
                    break
                self.launch()
            assert self.proc is not None
            try:
                self.proc.wait(timeout=max(10.0, self.deadline + 120 - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.reap()
        return self.report()

    def report(self) -> int:
        from sqlalchemy import create_engine
        from sqlalchemy import text

        from zcnas.spaces import get_space

        space = get_space("nb201")
        start, stop = (int(x) for x in self.args.slice.split(":"))
        expected = {space.key(space.arch_at(i)): i for i in range(start, stop)}
        engine = create_engine(self.url)
        with engine.connect() as conn:
            rows = dict(conn.execute(text(
                "SELECT arch_key, COUNT(*) FROM zcnas_scores WHERE proxy = 'slow_test' AND "
                "seed = :s AND status = 'complete' GROUP BY arch_key"),
                {"s": self.score_seed}).all())
            complete = conn.execute(text(
                "SELECT a.value_json FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                "WHERE s.study_name LIKE :n AND t.state = 'COMPLETE' AND a.key = 'space_index'"),
                {"n": f"%:seed{self.score_seed}:%"}).scalars().all()
        engine.dispose()
        per_index: dict[int, int] = {}
        for v in complete:
            per_index[int(v)] = per_index.get(int(v), 0) + 1
        one = sum(1 for k in expected if rows.get(k, 0) == 1)
        lost = sum(1 for k in expected if rows.get(k, 0) == 0)
        duplicated = sum(1 for k, i in expected.items()
                         if rows.get(k, 0) > 1 or per_index.get(i, 0) > 1)
        print()
        print(f"faults applied: {', '.join(self.done_faults)}")
        print(f"'No space left on device' errors in the PostgreSQL log: {self.no_space()}")
        print(f"command runs: {len(self.runs)} (exit codes {self.runs}); tracebacks in their "
              f"output: {self.tracebacks}")
        print(f"cells expected: {len(expected)}")
        print(f"cells with exactly one stored score: {one}")
        print(f"lost: {lost}")
        print(f"duplicated: {duplicated}")
        ok = lost == 0 and duplicated == 0 and bool(self.runs) and self.runs[-1] == 0
        print("fault soak:", "OK" if ok else "FAILED", f"({time.monotonic() - self.t0:.0f} s)")
        return 0 if ok else 1

    def cleanup(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        try:
            self.pg_stop()
        except SystemExit:
            pass
        if (self.pgdir / "postgres.log").is_file():
            (self.base / "work").mkdir(exist_ok=True)
            shutil.copy(self.pgdir / "postgres.log", self.base / "work" / "postgres.log")
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.pgdir)], check=False)
        if not self.args.keep:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            print(f"kept {self.base}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--slice", default="0:150", help="NB201 indices START:STOP")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--delay", type=float, default=0.2, help="seconds each score sleeps")
    p.add_argument("--budget", type=float, default=240.0,
                   help="seconds for the fault phase and the reruns (hard bound)")
    p.add_argument("--gap", type=float, nargs=2, default=(4.0, 8.0),
                   help="random seconds between two faults")
    p.add_argument("--outage", type=float, default=4.0, help="seconds the database is down")
    p.add_argument("--full-seconds", type=float, default=40.0,
                   help="longest time the disk stays full (it is freed 3 s after the server "
                        "first reports 'No space left on device')")
    p.add_argument("--retry-seconds", type=float, default=90.0,
                   help="ZCNAS_DB_RETRY_SECONDS of the command")
    p.add_argument("--tmpfs-mb", type=int, default=256, help="size of the database's tmpfs")
    p.add_argument("--reruns", type=int, default=4, help="reruns at most, to finish the slice")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault timing")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = p.parse_args(argv)
    soak = Soak(args)
    try:
        return soak.run()
    finally:
        soak.cleanup()


if __name__ == "__main__":
    sys.exit(main())
