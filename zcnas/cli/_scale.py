"""``zcnas score-space`` (1:1 with :func:`zcnas.scale.score_space`).

One machine, three worker processes::

    zcnas score-space --space nb201 --proxy gradsign --storage postgresql+psycopg2://u@db/zcnas \\
        --slice 0:500 --workers 3

Several machines: run the same command on each, with the same ``--storage`` PostgreSQL URL and
the same space/proxy/data/seed/slice arguments; they share one study and split the work.
"""

from __future__ import annotations

import argparse
import json
import logging

import optuna

from zcnas.cli._common import add_data_args
from zcnas.cli._common import parse_params
from zcnas.scale import parse_slice
from zcnas.scale import score_space
from zcnas.spaces import get_space


def _score_space(args: argparse.Namespace) -> int:
    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("zcnas").setLevel(logging.INFO if args.verbose else logging.WARNING)
    space = get_space(args.space)
    start, stop = parse_slice(args.slice, space.size())
    s = score_space(
        space, args.proxy, storage=args.storage, proxy_params=parse_params(args.proxy_params),
        data=args.data, batch_size=args.batch_size, data_seed=args.data_seed,
        num_classes=args.num_classes, seed=args.seed, device=args.device, start=start, stop=stop,
        workers=args.workers, heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period, max_retry=args.max_retry,
        torch_threads=args.torch_threads, progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(s, sort_keys=True))
    else:
        print(f"{s['study_name']}: {s['finished']}/{s['total']} finished ({s['complete']} COMPLETE, "
              f"{s['failed']} FAIL, {s['running']} RUNNING), {s['stored_scores']} scores stored, "
              f"{s['finished_during_run']} in {s['seconds']:.1f} s "
              f"({s['archs_per_second']:.2f} arch/s) [{s['storage']}]")
        for f in s["failures"]:
            print(f"FAIL\t{f['index']}\t{f['arch']}\t{f['reason']}")
        for line in s["worker_errors"]:
            print(f"zcnas: warning: {line}")
    if not s["done"]:
        print("zcnas: not finished: some trials are still RUNNING elsewhere or a worker died; "
              "run the same command again to finish")
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score-space",
        help="score a whole space (or --slice) with a proxy on many workers/machines "
             "(zcnas.scale.score_space)",
        description="Score every architecture of a space slice with one proxy. Workers (this "
                    "command's --workers processes, and the same command on other machines with "
                    "the same --storage) share one Optuna study in the database as their work "
                    "queue; rerun to resume.")
    p.add_argument("--space", default="nb201")
    p.add_argument("--proxy", required=True, help="a proxy name (`zcnas proxies` lists them)")
    p.add_argument("--proxy-params", default=None, help="JSON object of proxy hyper-parameters")
    p.add_argument("--storage", default=None,
                   help="SQLAlchemy URL shared by all workers, e.g. "
                        "postgresql+psycopg2://user@host:5432/db (default $ZCNAS_STORAGE or "
                        "sqlite:///zcnas.db; use PostgreSQL across machines)")
    p.add_argument("--slice", default=None, metavar="START:STOP",
                   help="architecture indices START..STOP-1 in the space's order (default: all)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch threads per worker (default 1 when --workers > 1, else torch's "
                        "default); keep workers x threads <= cores")
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--heartbeat-interval", type=int, default=10,
                   help="seconds between worker heartbeats (default 10)")
    p.add_argument("--grace-period", type=int, default=None,
                   help="seconds without heartbeat before a trial is retried "
                        "(default 2 x heartbeat interval)")
    p.add_argument("--max-retry", type=int, default=3,
                   help="retries of a killed worker's trial (default 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_data_args(p)
    p.set_defaults(func=_score_space)
