"""Measure ``zcnas score-space``: speed-up of N local workers over 1, and exactness of a larger run.

    export ZCNAS_DATA=/path/to/shared/data
    URL=$(bash scripts/pg_local.sh start /tmp/pg-bench 55440)
    PYTHONPATH=. python scripts/bench_scale.py --storage "$URL"

1. Speed: the same ``--speed-slice`` (default 9000:9120 of nb201) scored with ``--proxy``
   (default gradsign, batch 64) by 1 worker, then by ``--workers`` workers, each with 1 torch
   thread and a fresh database (so nothing is a cache hit). Prints both throughputs and the ratio.
2. ``--queue-check S``: the same with a proxy that sleeps S seconds (no CPU), 30 archs: the
   work queue's own scaling, apart from CPU contention.
3. Exactness: ``--exact-slice`` (default 0:500) scored with ``--exact-proxy`` (default params) by
   ``--workers`` workers in a fresh database; checks that every architecture has exactly one
   COMPLETE trial and one stored score, none computed twice.

On PostgreSQL each measurement gets its own database (``CREATE DATABASE``; dropped afterwards);
on SQLite, ``--storage`` must be a directory URL stem like ``sqlite:////dev/shm/bench`` and each
measurement gets a new file. Throughput counts the whole call (process start-up included) and,
separately, the span from the first trial's start to the last trial's end.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
import json
import os
import resource
import time
import uuid

import optuna
from sqlalchemy import text
from sqlalchemy.engine import make_url

from zcnas.proxies import Proxy
from zcnas.proxies import register_proxy
from zcnas.search.scale import score_space
from zcnas.spaces import get_space
from zcnas.storage import get_engine
from zcnas.storage import redact


@register_proxy("bench_sleep")
class SleepProxy(Proxy):
    """Bench-only proxy: the parameter count after sleeping ``seconds`` (no CPU), to measure the
    work queue's own scaling apart from CPU contention."""

    uses_data = False
    uses_labels = False

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    def compute(self, model, batch) -> float:  # noqa: ANN001
        time.sleep(self.seconds)
        return sum(p.numel() for p in model.parameters()) / 1e6


def cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (the spawned workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def fresh_db(url: str, tag: str) -> Iterator[str]:
    """A new empty database for one measurement."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = f"{parsed.database}-{tag}-{uuid.uuid4().hex[:6]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", ".lock", "-journal"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
        return
    name = f"zcnas_bench_{tag}_{uuid.uuid4().hex[:6]}"
    admin = get_engine(url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    fresh = parsed.set(database=name).render_as_string(hide_password=False)
    try:
        yield fresh
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def check(url: str, summary: dict, space_name: str) -> dict:
    """Exactness of one run, from the database itself."""
    space = get_space(space_name)
    study = optuna.load_study(study_name=summary["study_name"], storage=url)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    expected = {space.key(space.arch_at(i)) for i in range(summary["start"], summary["stop"])}
    keys = [t.user_attrs["arch_key"] for t in complete]
    with get_engine(url).connect() as conn:
        rows = conn.execute(text(
            "SELECT arch_key, COUNT(*) FROM zcnas_scores WHERE proxy = :p GROUP BY arch_key"),
            {"p": summary["proxy"]}).all()
    span = (max(t.datetime_complete for t in complete) - min(t.datetime_start for t in complete))
    return {
        "trials": len(trials), "complete": len(complete),
        "distinct_archs": len(set(keys)), "all_archs_of_slice": set(keys) == expected,
        "computed_not_cached": sum(not t.user_attrs["cached"] for t in complete),
        "stored_rows": sum(c for _, c in rows), "stored_distinct": len(rows),
        "trial_span_s": span.total_seconds(),
    }


def run(url: str, tag: str, *, space: str, proxy: str | Proxy, start: int, stop: int,
        workers: int, batch_size: int, data: str) -> dict:
    load0 = os.getloadavg()[0]
    with fresh_db(url, tag) as db:
        t0, c0 = time.perf_counter(), cpu_seconds()
        s = score_space(space, proxy, storage=db, data=data, batch_size=batch_size, start=start,
                        stop=stop, workers=workers, torch_threads=1, progress=False)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        out = {"workers": workers, "proxy": s["proxy"], "slice": f"{start}:{stop}", "wall_s": wall,
               "cpu_s": cpu,
               "load_avg_1min_before_after": [load0, os.getloadavg()[0]],
               "done": s["done"], "failed": s["failed"], **check(db, s, space)}
    n = stop - start
    out["archs_per_s"] = n / wall
    out["archs_per_s_trials"] = n / out["trial_span_s"]
    out["cpu_s_per_arch"] = cpu / n
    return out


def compare(url: str, proxy: str | Proxy, start: int, stop: int, workers: int,
            common: dict) -> list[dict]:
    """1 worker, then ``workers`` workers, on the same slice (fresh databases); prints both."""
    one = run(url, "w1", proxy=proxy, start=start, stop=stop, workers=1, **common)
    many = run(url, f"w{workers}", proxy=proxy, start=start, stop=stop, workers=workers, **common)
    for r in (one, many):
        print(f"{r['proxy']} {r['slice']} x{r['workers']} worker(s): {r['wall_s']:.1f} s wall "
              f"({r['archs_per_s']:.2f} arch/s), trials span {r['trial_span_s']:.1f} s "
              f"({r['archs_per_s_trials']:.2f} arch/s), {r['cpu_s_per_arch']:.2f} CPU s/arch; "
              f"complete {r['complete']}, stored {r['stored_rows']}; "
              f"load avg {[round(x, 1) for x in r['load_avg_1min_before_after']]}", flush=True)
    print(f"speed-up {workers} workers vs 1 ({one['proxy']}): "
          f"{one['wall_s'] / many['wall_s']:.2f}x wall, "
          f"{one['trial_span_s'] / many['trial_span_s']:.2f}x trial span; CPU per arch "
          f"{many['cpu_s_per_arch'] / one['cpu_s_per_arch']:.2f}x", flush=True)
    return [one, many]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", required=True)
    ap.add_argument("--space", default="nb201")
    ap.add_argument("--proxy", default="gradsign")
    ap.add_argument("--speed-slice", default="9000:9120")
    ap.add_argument("--exact-proxy", default="params")
    ap.add_argument("--exact-slice", default="0:500")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--data", default="cifar10")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--queue-check", type=float, default=0.0, metavar="SECONDS",
                    help="also compare 1 vs N workers on 30 archs with a proxy that only sleeps "
                         "SECONDS (the queue's scaling without CPU contention)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"storage {redact(args.storage)}, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    results = []
    common = dict(space=args.space, batch_size=args.batch_size, data=args.data)
    if not args.skip_speed:
        a, b = (int(x) for x in args.speed_slice.split(":"))
        results += compare(args.storage, args.proxy, a, b, args.workers, common)
        print(f"(at most ~{os.cpu_count()}x on {os.cpu_count()} cores; with other users' load and "
              f"kernel autogroup CPU sharing, extra processes of one session gain little)")
    if args.queue_check:
        results += compare(args.storage, SleepProxy(args.queue_check), 0, 30, args.workers,
                           common)
    if not args.skip_exact:
        a, b = (int(x) for x in args.exact_slice.split(":"))
        r = run(args.storage, "exact", proxy=args.exact_proxy, start=a, stop=b,
                workers=args.workers, **common)
        results.append(r)
        ok = (r["trials"] == r["complete"] == r["distinct_archs"] == r["stored_rows"]
              == r["stored_distinct"] == r["computed_not_cached"] == b - a and r["all_archs_of_slice"])
        print(f"exactness {r['proxy']} {r['slice']} x{r['workers']} workers: {r['trials']} trials, "
              f"{r['complete']} COMPLETE, {r['distinct_archs']} distinct archs, "
              f"{r['stored_rows']} stored rows ({r['stored_distinct']} distinct), "
              f"{r['computed_not_cached']} computed; {r['wall_s']:.1f} s wall -> "
              f"{'EXACT' if ok else 'MISMATCH'}")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
