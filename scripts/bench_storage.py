"""Storage + sampler overhead per trial: time in Optuna/SQL vs time in the proxy.

For each storage (SQLite on disk, SQLite on /dev/shm, PostgreSQL if given), each worker count
and each sampler, a fresh study runs ``--trials`` trials of ``ProxyObjective(nb201, --proxy)``
through :func:`zcnas.integration.optuna.optimize_exact` (the ``zcnas run`` loop: heartbeat,
allocation lock, score cache in the same database). Per configuration it prints

* ``wall``: seconds from the start signal until the last worker is done;
* ``proxy``: seconds spent computing proxy scores (sum of the trials' ``proxy_seconds``);
* ``overhead/trial``: (sum of worker wall times - proxy seconds) / trials, i.e. everything that
  is not the proxy: Optuna's storage commits, the sampler, the zcnas score cache, the lock;
* ``overhead %``: that overhead as a share of the study's time, overhead / (overhead + proxy);
* ``trials/s``: throughput.

``--proxy params`` (default; synthetic 2-image batch) isolates the overhead; ``--proxy gradsign
--data cifar10 --batch-size 64`` gives its share of a real GradSign study (fresh init seed per
study, so nothing is a cache hit).

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


def _worker(url: str, name: str, n_trials: int, sampler: str, seed: int, proxy: str,
            data: str, batch_size: int, init_seed: int, ready: object, start: object,
            out: object) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna
    import torch

    from zcnas.data import load_batch
    from zcnas.search.optuna import ProxyObjective
    from zcnas.search.optuna import StudyLock
    from zcnas.search.optuna import load_or_create
    from zcnas.search.optuna import optimize_exact
    from zcnas.storage import ScoreCache

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    obj = ProxyObjective("nb201", proxy, load_batch(data, batch_size, 0), seed=init_seed,
                         cache=ScoreCache(url))
    study = load_or_create(name, storage=url, directions=obj.directions,
                           sampler=getattr(optuna.samplers, sampler)(seed=seed),
                           heartbeat_interval=10)
    ready.put(seed)  # type: ignore[attr-defined]
    start.wait()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    optimize_exact(study, obj, n_trials, lock=StudyLock(url, name), poll_seconds=0.2)
    out.put(time.perf_counter() - t0)  # type: ignore[attr-defined]


def bench(url: str, workers: int, sampler: str, n_trials: int, proxy: str = "params",
          data: str = "synthetic", batch_size: int = 2) -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    from zcnas.search.optuna import create_study

    name = f"bench-{uuid.uuid4().hex[:8]}"
    create_study(name, storage=url, directions=["maximize"])
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    init_seed = uuid.uuid4().int % 2**31  # fresh weights: no score is a cache hit
    procs = [ctx.Process(target=_worker, args=(url, name, n_trials, sampler, i, proxy, data,
                                               batch_size, init_seed, ready, start, out))
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
    spent = sum(float(t.user_attrs.get("proxy_seconds", 0.0)) for t in trials)
    durations = [t.duration.total_seconds() for t in trials if t.duration is not None]
    overhead = sum(walls) - spent
    return {
        "trials": len(trials), "wall": wall, "proxy": spent,
        "overhead_per_trial": overhead / max(1, len(trials)),
        "overhead_share": overhead / max(1e-9, sum(walls)),
        "trial_duration_median": statistics.median(durations) if durations else float("nan"),
        "throughput": len(trials) / wall,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--samplers", nargs="+", default=["TPESampler", "RandomSampler"])
    ap.add_argument("--proxy", default="params")
    ap.add_argument("--data", default="synthetic", help="batch source (cifar10: the shared sample)")
    ap.add_argument("--batch-size", type=int, default=2)
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
    print(f"# {args.trials} trials of ProxyObjective(nb201, {args.proxy}) on {args.data} batch "
          f"{args.batch_size} per row; cpu count "
          f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'storage':<12} {'workers':>7} {'sampler':<14} {'trials':>6} {'wall s':>8} "
          f"{'proxy s':>8} {'overhead/trial ms':>18} {'overhead %':>10} {'median trial ms':>16} "
          f"{'trials/s':>9}",
          flush=True)
    for label, url in storages:
        for workers in args.workers:
            for sampler in args.samplers:
                r = bench(url, workers, sampler, args.trials, args.proxy, args.data,
                          args.batch_size)
                print(f"{label:<12} {workers:>7} {sampler:<14} {r['trials']:>6.0f} "
                      f"{r['wall']:>8.2f} {r['proxy']:>8.2f} {1000 * r['overhead_per_trial']:>18.1f} "
                      f"{100 * r['overhead_share']:>10.1f} "
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
