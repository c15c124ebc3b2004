"""``zcnas proxies | spaces | benchmarks | score`` (``zcnas.list_proxies()``,
``zcnas.list_spaces()``, ``zcnas.list_benchmarks()``, ``zcnas.score_record(...)``)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING
from typing import Any

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_input_size_arg
from zcnas.cli._common import add_json_arg
from zcnas.cli._common import add_proxy_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import input_size
from zcnas.cli._common import json_kwargs
from zcnas.cli._common import proxy_params
from zcnas.cli._common import split_names


if TYPE_CHECKING:
    from zcnas.scoring import Scorable
    from zcnas.spaces import Arch


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


def _load_factory(spec: str) -> Any:
    """``package.module:factory`` -> the callable (a one-line error naming the fix)."""
    import importlib

    from zcnas.exceptions import ZcnasError

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ZcnasError(f"--model {spec!r} must be package.module:factory, e.g. "
                         f"zcnas.testing.models:resnet18_small")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ZcnasError(f"--model: cannot import {module_name!r} ({exc}); is it installed or "
                         f"on PYTHONPATH?") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ZcnasError(f"--model: {module_name} has no callable {attr!r}")
    return factory


def _score(args: argparse.Namespace) -> int:
    from zcnas.data import load_batch
    from zcnas.data import synthetic_batch
    from zcnas.exceptions import ZcnasError
    from zcnas.scoring import resolve
    from zcnas.scoring import score_model_record
    from zcnas.scoring import score_record
    from zcnas.spaces import get_space
    from zcnas.storage import ScoreCache

    if (args.model is None) == (args.arch is None):
        raise ZcnasError("give --arch KEY [KEY ...] (cells of --space) or --model "
                         "package.module:factory (your own nn.Module)")
    names = split_names(args.proxy)
    params = proxy_params(args.proxy_params, names)
    proxies = [resolve(n, **params.get(n, {})) for n in names]
    size = input_size(args.input_size)
    if args.data == "synthetic" and size is not None:
        batch = synthetic_batch(args.batch_size, args.data_seed, args.num_classes or 10,
                                image_size=size[1], channels=size[0], width=size[2])
    else:
        batch = load_batch(args.data, args.batch_size, args.data_seed,
                           args.num_classes).with_input_size(size)
    if args.model is not None:
        factory = _load_factory(args.model)
        kwargs = json_kwargs(args.factory_kwargs, "--factory-kwargs")
        jobs: list[tuple[Scorable, Arch | None]] = [(p, None) for p in proxies]
    else:
        space = get_space(args.space)
        jobs = [(p, space.as_arch(a)) for p in proxies for a in args.arch]
    # the database is opened (and an SQLite file created) only once the input is known good
    cache = None if args.no_cache else ScoreCache(args.storage)
    status = 0
    for proxy, arch in jobs:
        if arch is None:
            rec = score_model_record(factory, proxy, batch, seed=args.seed, device=args.device,
                                     cache=cache, factory_kwargs=kwargs, label=args.model)
        else:
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
    p.add_argument("--arch", nargs="+", default=None, help="architecture key(s) of --space")
    p.add_argument("--model", default=None, metavar="MODULE:FACTORY",
                   help="score your own nn.Module instead: a factory (called with "
                        "--factory-kwargs, and num_classes if it takes it) mapping images to "
                        "logits")
    p.add_argument("--factory-kwargs", default=None, metavar="JSON",
                   help='keyword arguments of --model\'s factory, e.g. \'{"width": 16}\'')
    add_input_size_arg(p, "input images (default: the data's; cifar10 images are resized, "
                          "synthetic ones drawn at that size)")
    add_json_arg(p)
    add_data_args(p)
    add_run_args(p)
    p.set_defaults(func=_score)
