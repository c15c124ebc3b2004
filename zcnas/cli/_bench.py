"""``zcnas bench``: proxy timings against the forward+backward floor (zcnas.bench.bench)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zcnas.cli._common import split_names


def _bench(args: argparse.Namespace) -> int:
    from zcnas.bench import bench
    from zcnas.bench import format_report

    result = bench(
        n=args.n, batch_size=args.batch_size,
        proxies=split_names(args.proxies) if args.proxies else None, device=args.device,
        repeats=args.repeats, seed=args.seed, data=args.data, threads=args.threads,
        loops=not args.no_loops, progress=not args.quiet,
    )
    print(format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time proxies against one batched forward+backward on seeded NB201 nets",
    )
    p.add_argument("--n", type=int, default=5, help="number of seeded random NB201 nets")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--proxies", default=None,
                   help="comma-separated proxy names (default: every registered proxy)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per method (median)")
    p.add_argument("--seed", type=int, default=0, help="seeds the nets and their initialisation")
    p.add_argument("--data", default="cifar10", help="batch source (see zcnas score --data)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--no-loops", action="store_true",
                   help="skip the slow per-sample loop references")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the numbers as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_bench)
