"""``zcnas bench`` (:func:`zcnas.scoring.bench`): proxy timings against the forward+backward
floor; ``--suite throughput`` (:func:`zcnas.scoring.throughput`): many nets scored serially,
with host-side prefetch, on CUDA streams or in worker processes, with the same values."""

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
from zcnas.cli._common import proxy_params
from zcnas.cli._common import split_names
from zcnas.exceptions import ZcnasError


SUITES = ("proxies", "throughput")


def _run(args: argparse.Namespace) -> dict:
    if args.suite == "throughput":
        from zcnas.scoring import throughput

        names = split_names(args.proxy) or ["gradsign"]
        if len(names) != 1:
            raise ZcnasError("--suite throughput scores one proxy; give --proxy NAME")
        return throughput(
            n=args.n, batch_size=args.batch_size, proxy=names[0],
            proxy_params=proxy_params(args.proxy_params, names).get(names[0]),
            space=args.space, device=args.device, modes=split_names(args.modes) or None,
            workers=args.workers, streams=args.streams, prefetch=args.prefetch, seed=args.seed,
            data=args.data, threads=args.threads, repeats=args.repeats,
        )
    from zcnas.scoring import bench

    return bench(
        n=args.n, batch_size=args.batch_size, space=args.space,
        proxies=split_names(args.proxy) or None, device=args.device,
        repeats=args.repeats, seed=args.seed, data=args.data, threads=args.threads,
        loops=not args.no_loops, variants=split_names(args.variants),
        progress=not args.no_progress,
    )


def _bench(args: argparse.Namespace) -> int:
    from zcnas.scoring import format_bench
    from zcnas.scoring import format_throughput

    if args.repeats is None:
        args.repeats = 1 if args.suite == "throughput" else 3
    result = _run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_throughput(result) if args.suite == "throughput" else format_bench(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", formatter_class=Formatter,
        help="time proxies against one batched forward+backward on seeded networks "
             "(zcnas.scoring.bench), or many-net throughput (--suite throughput)",
    )
    p.add_argument("--suite", choices=SUITES, default="proxies",
                   help="proxies: each proxy vs the forward+backward floor (and its batch-1 "
                        "loop); throughput: one proxy on --n nets in each of --modes")
    p.add_argument("--n", type=positive, default=5, help="number of seeded random networks")
    add_space_arg(p)
    p.add_argument("--batch-size", type=positive, default=64)
    add_proxy_args(p, aliases=["--proxies"])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--repeats", type=positive, default=None,
                   help="timed runs per method or mode, median (default 3; 1 for throughput)")
    p.add_argument("--seed", type=int, default=0, help="seeds the nets and their initialisation")
    p.add_argument("--data", default="cifar10", help="batch source (see zcnas score --data)")
    add_threads_arg(p)
    p.add_argument("--no-loops", action="store_true",
                   help="skip the slow per-sample loop references")
    p.add_argument("--variants", default=None, metavar="NAME[,NAME]",
                   help="proxies suite: also time layout variants (channels_last)")
    p.add_argument("--modes", default=None, metavar="MODE[,MODE]",
                   help="throughput suite: serial, prefetch, streams, processes (default all "
                        "but streams; streams too on cuda)")
    p.add_argument("--workers", type=positive, default=2,
                   help="throughput suite: processes of the 'processes' mode")
    p.add_argument("--streams", type=positive, default=2,
                   help="throughput suite: CUDA streams (threads) of the 'streams' mode")
    p.add_argument("--prefetch", type=positive, default=2,
                   help="throughput suite: nets built ahead by the prefetch thread")
    add_json_arg(p)
    p.add_argument("--out", default=None, metavar="FILE", help="also write the numbers as JSON")
    add_progress_arg(p)
    p.set_defaults(func=_bench)
