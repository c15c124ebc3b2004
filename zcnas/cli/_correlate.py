"""``zcnas correlate`` (:func:`zcnas.analysis.correlate`): rank correlation of proxies with
benchmark ground truth."""

from __future__ import annotations

import argparse

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_benchmark_args
from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_input_size_arg
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_proxy_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import add_threads_arg
from zcnas.cli._common import input_size
from zcnas.cli._common import positive
from zcnas.cli._common import proxy_params
from zcnas.cli._common import split_names


DEFAULT_PROXIES = "gradsign,gradalign,synflow,naswot,params"  # == analysis.DEFAULT_PROXIES


def _run(args: argparse.Namespace) -> int:
    from zcnas.analysis import correlate
    from zcnas.analysis import format_agreement
    from zcnas.analysis import format_comparisons
    from zcnas.analysis import format_summary

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = split_names(args.proxy)
    result = correlate(
        space=args.space, proxies=names, proxy_params=proxy_params(args.proxy_params, names),
        benchmark=args.benchmark,
        benchmark_params={"path": args.benchmark_path} if args.benchmark_path else None,
        datasets=split_names(args.dataset) or None, metric=args.metric, n=args.n,
        sample_seed=args.sample_seed, data=args.data, batch_size=args.batch_size,
        data_seed=args.data_seed, num_classes=args.num_classes,
        input_size=input_size(args.input_size), seed=args.seed, device=args.device,
        storage=args.storage, use_cache=not args.no_cache,
        n_bootstrap=args.bootstrap, out_dir=args.out, holdout=args.holdout,
        holdout_seed=args.holdout_seed, reference=args.reference,
        more_seeds=[int(x) for x in split_names(args.more_seeds)],
        progress=not args.no_progress,
    )
    print(format_summary(result.summary))
    if result.comparisons:
        print(format_comparisons(result.comparisons))
    if result.agreement:
        print(format_agreement(result.agreement))
    for name, rho in result.seed_spread.items():
        print(f"{name}: Spearman rho between init seeds {args.seed} and the next: {rho:.3f}")
    for what, path in result.files.items():
        print(f"{what}: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "correlate", formatter_class=Formatter,
        help="rank correlation of proxies vs ground truth (zcnas.analysis.correlate)",
        description="Score --n seeded architectures with each proxy (cached in --storage) and "
                    "correlate with the benchmark. Cost on a 2-core CPU: about 2-4 s per "
                    "architecture for the default proxies at batch 64 (--n 100: a few minutes; "
                    "--n 1000: about an hour); a rerun reuses every cached score.")
    add_space_arg(p)
    add_proxy_args(p, default=DEFAULT_PROXIES, aliases=["--proxies"])
    add_benchmark_args(p)
    p.add_argument("--n", type=positive, default=100, help="number of sampled architectures")
    p.add_argument("--sample-seed", type=int, default=0, help="which architectures")
    p.add_argument("--bootstrap", type=positive, default=1000,
                   help="bootstrap resamples for CIs")
    p.add_argument("--out", default="zcnas_out/correlate", help="output folder (CSV, PNG)")
    p.add_argument("--holdout", type=int, default=0,
                   help="fit a learned_ensemble of the listed proxies on this many labelled "
                        "cells and report every proxy only on disjoint cells")
    p.add_argument("--holdout-seed", type=int, default=None,
                   help="which cells train the ensemble (default: --sample-seed + 1)")
    p.add_argument("--more-seeds", default=None, metavar="S1,S2,...",
                   help="also score every proxy with these init seeds and report <proxy>@<k>seeds "
                        "rows (mean rank over the first k seeds; uncertainty of a score)")
    p.add_argument("--reference", action="store_true",
                   help="add the benchmark's precomputed proxy scores of the same cells "
                        "(NAS-Bench-Suite-Zero) as ref:<proxy> rows, a cross-check")
    add_threads_arg(p)
    add_progress_arg(p)
    add_data_args(p)
    add_input_size_arg(p, "resize the batch's images to C,H,W (e.g. 3,64,64 for TNB101, whose "
                          "last module runs at 1x1 on 32x32 images; default: as loaded)")
    add_run_args(p)
    p.set_defaults(func=_run)
