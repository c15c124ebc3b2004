"""``zcnas correlate``: rank correlation of proxies with benchmark ground truth."""

from __future__ import annotations

import argparse
import json

from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import split_names
from zcnas.correlate import correlate
from zcnas.correlate import format_comparisons
from zcnas.correlate import format_summary
from zcnas.exceptions import ZcnasError


def _run(args: argparse.Namespace) -> int:
    try:
        proxy_params = json.loads(args.proxy_params) if args.proxy_params else {}
    except json.JSONDecodeError as exc:
        raise ZcnasError(
            f"--proxy-params must be JSON like '{{\"gradsign\": {{\"variant\": \"mean\"}}}}': {exc}"
        ) from None
    result = correlate(
        space=args.space, proxies=split_names(args.proxies), proxy_params=proxy_params,
        benchmark=args.benchmark,
        benchmark_params={"path": args.benchmark_path} if args.benchmark_path else None,
        datasets=split_names(args.dataset), metric=args.metric, n=args.n,
        sample_seed=args.sample_seed, data=args.data, batch_size=args.batch_size,
        data_seed=args.data_seed, num_classes=args.num_classes, seed=args.seed,
        device=args.device, storage=args.storage, use_cache=not args.no_cache,
        n_bootstrap=args.bootstrap, out_dir=args.out, holdout=args.holdout,
        holdout_seed=args.holdout_seed, progress=not args.quiet,
    )
    print(format_summary(result.summary))
    if result.comparisons:
        print(format_comparisons(result.comparisons))
    for what, path in result.files.items():
        print(f"{what}: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("correlate", help="rank correlation of proxies vs ground truth "
                                         "(zcnas.correlate.correlate)")
    p.add_argument("--space", default="nb201")
    p.add_argument("--proxies", default="gradsign", help="comma-separated proxy names")
    p.add_argument("--proxy-params", default=None,
                   help='JSON: {"proxy": {"param": value}}')
    p.add_argument("--benchmark", default="nb201")
    p.add_argument("--benchmark-path", default=None, help="ground-truth file of the benchmark")
    p.add_argument("--dataset", default="cifar10",
                   help="ground-truth dataset(s), comma-separated: cifar10,cifar100,imagenet16")
    p.add_argument("--metric", default="test")
    p.add_argument("--n", type=int, default=1000, help="number of sampled architectures")
    p.add_argument("--sample-seed", type=int, default=0, help="which architectures")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--out", default="zcnas_out/correlate", help="output folder (CSV, PNG)")
    p.add_argument("--holdout", type=int, default=0,
                   help="fit a learned_ensemble of the listed proxies on this many labelled "
                        "cells and report every proxy only on disjoint cells")
    p.add_argument("--holdout-seed", type=int, default=None,
                   help="which cells train the ensemble (default: --sample-seed + 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_args(p)
    add_run_args(p)
    p.set_defaults(func=_run)
