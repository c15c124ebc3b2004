"""Storage + sampler overhead per trial: time in Optuna/SQL vs time in the proxy.

For each storage (SQLite on disk, SQLite on /dev/shm, PostgreSQL if given), each worker count
and each sampler, a fresh study runs ``--trials`` trials of ``ProxyObjective(nb201, params)``
through :func:`zcnas.integration.optuna.optimize_exact` (the ``zcnas run`` loop: heartbeat,
allocation lock, score cache in the same database). Per configuration it prints

* ``wall``: seconds from the start signal until the last worker is done;
* ``proxy``: seconds spent computing proxy scores (sum of the trials' ``proxy_seconds``);
* ``overhead/trial``: (sum of worker wall times - proxy seconds) / trials, i.e. everything that
  is not the proxy: Optuna's storage commits, the sampler, the zcnas score cache, the lock;
* ``trials/s``: throughput.

    PYTHONPATH=. python scripts/bench_storage.py --trials 30 \\
        --postgres postgresql+psycopg2://postgres@127.0.0.1:55432/zcnas
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
from pathlib import Path
import shutil
import statistics
import sys
import tempfile
import time
import uuid


def _worker(url: str, name: str, n_trials: int, sampler: str, seed: int, ready: object,
            start: object, out: object) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna
    import torch

    from zcnas.data import synthetic_batch
    from zcnas.integration.optuna import ProxyObjective
    from zcnas.integration.optuna import StudyLock
    from zcnas.integration.optuna import load_or_create
    from zcnas.integration.optuna import optimize_exact
    from zcnas.storage import ScoreCache

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    obj = ProxyObjective("nb201", "params", synthetic_batch(2, seed=0), cache=ScoreCache(url))
    study = load_or_create(name, storage=url, directions=obj.directions,
                           sampler=getattr(optuna.samplers, sampler)(seed=seed),
                           heartbeat_interval=10)
    ready.put(seed)  # type: ignore[attr-defined]
    start.wait()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    optimize_exact(study, obj, n_trials, lock=StudyLock(url, name), poll_seconds=0.2)
    out.put(time.perf_counter() - t0)  # type: ignore[attr-defined]


def bench(url: str, workers: int, sampler: str, n_trials: int) -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from zcnas.integration.optuna import create_study

    name = f"bench-{uuid.uuid4().hex[:8]}"
    create_study(name, storage=url, directions=["maximize"])
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, name, n_trials, sampler, i, ready, start, out))
             for i in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:  # every worker has imported torch/optuna and opened the study
        ready.get(timeout=600)
    t0 = time.perf_counter()
    start.set()
    walls = [out.get(timeout=900) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.trials
    proxy = sum(float(t.user_attrs.get("proxy_seconds", 0.0)) for t in trials)
    durations = [t.duration.total_seconds() for t in trials if t.duration is not None]
    return {
        "trials": len(trials), "wall": wall, "proxy": proxy,
        "overhead_per_trial": (sum(walls) - proxy) / max(1, len(trials)),
        "trial_duration_median": statistics.median(durations) if durations else float("nan"),
        "throughput": len(trials) / wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--samplers", nargs="+", default=["TPESampler", "RandomSampler"])
    ap.add_argument("--sqlite-dir", default=tempfile.gettempdir(),
                    help="a directory on disk for the SQLite file (default: the temp dir)")
    ap.add_argument("--no-shm", action="store_true", help="skip SQLite on /dev/shm")
    ap.add_argument("--postgres", default=os.environ.get("ZCNAS_TEST_POSTGRES_URL"),
                    help="PostgreSQL URL (default $ZCNAS_TEST_POSTGRES_URL; skipped if unset)")
    args = ap.parse_args(argv)

    from zcnas.storage import redact

    tmp = Path(tempfile.mkdtemp(prefix="zcnas-bench-", dir=args.sqlite_dir))
    dirs = [tmp]
    storages = [("sqlite-disk", f"sqlite:///{tmp / 'bench.db'}")]
    if not args.no_shm and Path("/dev/shm").is_dir():
        shm = Path(tempfile.mkdtemp(prefix="zcnas-bench-", dir="/dev/shm"))
        dirs.append(shm)
        storages.append(("sqlite-shm", f"sqlite:///{shm / 'bench.db'}"))
    if args.postgres:
        storages.append(("postgresql", args.postgres))
    print(f"# {args.trials} trials of ProxyObjective(nb201, params) per row; cpu count "
          f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'storage':<12} {'workers':>7} {'sampler':<14} {'trials':>6} {'wall s':>8} "
          f"{'proxy s':>8} {'overhead/trial ms':>18} {'median trial ms':>16} {'trials/s':>9}",
          flush=True)
    for label, url in storages:
        for workers in args.workers:
            for sampler in args.samplers:
                r = bench(url, workers, sampler, args.trials)
                print(f"{label:<12} {workers:>7} {sampler:<14} {r['trials']:>6.0f} "
                      f"{r['wall']:>8.2f} {r['proxy']:>8.2f} {1000 * r['overhead_per_trial']:>18.1f} "
                      f"{1000 * r['trial_duration_median']:>16.1f} {r['throughput']:>9.2f}",
                      flush=True)
    print(f"# storages: {', '.join(f'{k}={redact(v)}' for k, v in storages)}")
    print("# overhead/trial = (sum of worker wall times - proxy seconds) / trials: with several "
          "workers it includes time spent waiting for the allocation lock and for the others "
          "to finish; compare throughput (trials/s) across worker counts")
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
