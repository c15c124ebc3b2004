"""``zcnas proxies | spaces | benchmarks | score``."""

from __future__ import annotations

import argparse
import json

from zcnas.benchmarks import BENCHMARKS
from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import parse_params
from zcnas.data import load_batch
from zcnas.evaluate import score_record
from zcnas.proxies import PROXIES
from zcnas.proxies import get_proxy
from zcnas.spaces import SPACES
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache


def _list_proxies(args: argparse.Namespace) -> int:
    names = PROXIES.names()
    width = max(len(n) for n in names) + 1
    for name in names:
        cls = PROXIES.get_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:<{width}} {cls.direction:<9} v{cls.version:<4} {doc}")
    return 0


def _list_simple(registry) -> int:  # noqa: ANN001
    for name in registry.names():
        doc = (registry.get_class(name).__doc__ or "").strip().splitlines()
        print(f"{name:<14} {doc[0] if doc else ''}")
    return 0


def _score(args: argparse.Namespace) -> int:
    space = get_space(args.space)
    batch = load_batch(args.data, args.batch_size, args.data_seed, args.num_classes)
    cache = None if args.no_cache else ScoreCache(args.storage)
    params = parse_params(args.proxy_params)
    status = 0
    for proxy_name in [n for n in args.proxy.split(",") if n]:
        proxy = get_proxy(proxy_name, **params)
        for arch in args.arch:
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
    p = sub.add_parser("proxies", help="list the proxies (built-in and plugins)")
    p.set_defaults(func=_list_proxies)
    p = sub.add_parser("spaces", help="list the search spaces")
    p.set_defaults(func=lambda a: _list_simple(SPACES))
    p = sub.add_parser("benchmarks", help="list the benchmarks")
    p.set_defaults(func=lambda a: _list_simple(BENCHMARKS))

    p = sub.add_parser("score", help="score architectures with proxies (zcnas.score)")
    p.add_argument("--space", default="nb201")
    p.add_argument("--proxy", required=True, help="a proxy name, or several comma-separated")
    p.add_argument("--proxy-params", default=None, help="JSON object of proxy hyper-parameters")
    p.add_argument("--arch", nargs="+", required=True, help="architecture key(s)")
    p.add_argument("--json", action="store_true", help="one JSON object per score")
    add_data_args(p)
    add_run_args(p)
    p.set_defaults(func=_score)
