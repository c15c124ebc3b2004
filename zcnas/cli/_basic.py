"""``zcnas proxies | spaces | benchmarks | score`` (``zcnas.list_proxies()``,
``zcnas.list_spaces()``, ``zcnas.list_benchmarks()``, ``zcnas.score_record(...)``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_json_arg
from zcnas.cli._common import add_proxy_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import proxy_params
from zcnas.cli._common import split_names


def _first_line(cls: type) -> str:
    doc = (cls.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def _list_proxies(args: argparse.Namespace) -> int:
    from zcnas.proxies import PROXIES
    from zcnas.scoring import EVALUATORS
    from zcnas.scoring import tag

    rows = []
    for registry in (PROXIES, EVALUATORS):
        for name in registry.names():
            cls: Any = registry.get_class(name)
            rows.append((name, cls.direction, str(getattr(cls, "version", "")), tag(cls),
                         _first_line(cls)))
    width = max(len(r[0]) for r in rows) + 1
    for name, direction, version, kind, doc in sorted(rows):
        print(f"{name:<{width}} {direction:<9} v{version:<4} {kind:<19} {doc}")
    return 0


def _list_spaces(args: argparse.Namespace) -> int:
    from zcnas.spaces import SPACES

    for name in SPACES.names():
        print(f"{name:<14} {_first_line(SPACES.get_class(name))}")
    return 0


def _list_benchmarks(args: argparse.Namespace) -> int:
    from zcnas.benchmarks import BENCHMARKS

    for name in BENCHMARKS.names():
        print(f"{name:<14} {_first_line(BENCHMARKS.get_class(name))}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from zcnas.data import load_batch
    from zcnas.scoring import resolve
    from zcnas.scoring import score_record
    from zcnas.spaces import get_space
    from zcnas.storage import ScoreCache

    names = split_names(args.proxy)
    params = proxy_params(args.proxy_params, names)
    proxies = [resolve(n, **params.get(n, {})) for n in names]
    space = get_space(args.space)
    archs = [space.as_arch(a) for a in args.arch]
    batch = load_batch(args.data, args.batch_size, args.data_seed, args.num_classes)
    cache = None if args.no_cache else ScoreCache(args.storage)
    status = 0
    for proxy in proxies:
        for arch in archs:
            rec = score_record(space, proxy, arch, batch, seed=args.seed, device=args.device,
                               cache=cache)
            if args.json:
                print(json.dumps({
                    "arch": rec.key.arch_key, "proxy": proxy.name, "value": rec.value,
                    "status": rec.status, "reason": rec.reason, "seconds": rec.seconds,
                    "cached": rec.cached, "seed": rec.key.seed, "batch_id": rec.key.batch_id,
                    "device": rec.device, "zcnas_version": rec.zcnas_version,
                }))
            elif rec.ok:
                print(f"{proxy.name}\t{rec.value:.6g}\t{rec.seconds:.3f}s"
                      f"{' (cached)' if rec.cached else ''}\t{rec.key.arch_key}")
            else:
                print(f"{proxy.name}\tFAILED: {rec.reason}\t{rec.key.arch_key}")
            if not rec.ok:
                status = 1
    return status


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("proxies", help="list the proxies and evaluators (built-in and plugins) "
                                       "with direction, version and honesty tag")
    p.set_defaults(func=_list_proxies)
    p = sub.add_parser("spaces", help="list the search spaces")
    p.set_defaults(func=_list_spaces)
    p = sub.add_parser("benchmarks", help="list the benchmarks")
    p.set_defaults(func=_list_benchmarks)

    p = sub.add_parser("score", help="score architectures with proxies (zcnas.score_record)",
                       formatter_class=Formatter)
    add_space_arg(p)
    add_proxy_args(p, required=True)
    p.add_argument("--arch", nargs="+", required=True, help="architecture key(s)")
    add_json_arg(p)
    add_data_args(p)
    add_run_args(p)
    p.set_defaults(func=_score)
