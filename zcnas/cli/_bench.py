"""``zcnas bench`` (:func:`zcnas.scoring.bench`): proxy timings against the forward+backward
floor."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_json_arg
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_proxy_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import add_threads_arg
from zcnas.cli._common import positive
from zcnas.cli._common import split_names


def _bench(args: argparse.Namespace) -> int:
    from zcnas.scoring import bench
    from zcnas.scoring import format_bench

    result = bench(
        n=args.n, batch_size=args.batch_size, space=args.space,
        proxies=split_names(args.proxy) or None, device=args.device,
        repeats=args.repeats, seed=args.seed, data=args.data, threads=args.threads,
        loops=not args.no_loops, progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(format_bench(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", formatter_class=Formatter,
        help="time proxies against one batched forward+backward on seeded networks "
             "(zcnas.scoring.bench)",
    )
    p.add_argument("--n", type=positive, default=5, help="number of seeded random networks")
    add_space_arg(p)
    p.add_argument("--batch-size", type=positive, default=64)
    add_proxy_args(p, aliases=["--proxies"])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--repeats", type=positive, default=3, help="timed runs per method (median)")
    p.add_argument("--seed", type=int, default=0, help="seeds the nets and their initialisation")
    p.add_argument("--data", default="cifar10", help="batch source (see zcnas score --data)")
    add_threads_arg(p)
    p.add_argument("--no-loops", action="store_true",
                   help="skip the slow per-sample loop references")
    add_json_arg(p)
    p.add_argument("--out", default=None, metavar="FILE", help="also write the numbers as JSON")
    add_progress_arg(p)
    p.set_defaults(func=_bench)
