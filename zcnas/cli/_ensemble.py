"""``zcnas fit-ensemble`` (:func:`zcnas.ensembles.fit_ensemble`): learn member weights on
labelled cells."""

from __future__ import annotations

import argparse

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_benchmark_args
from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_proxy_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import positive
from zcnas.cli._common import proxy_params
from zcnas.cli._common import split_names


DEFAULT_MEMBERS = "gradsign,synflow,naswot,jacob_cov,zico,flops"  # == ensembles.DEFAULT_MEMBERS


def _run(args: argparse.Namespace) -> int:
    from zcnas.ensembles import fit_ensemble

    names = split_names(args.proxy)
    spec = fit_ensemble(
        out=args.out, space=args.space, members=names,
        member_params=proxy_params(args.proxy_params, names),
        benchmark=args.benchmark, dataset=args.dataset, metric=args.metric,
        n_train=args.n_train, train_seed=args.train_seed, pool_size=args.pool_size,
        pool_seed=args.pool_seed, data=args.data, batch_size=args.batch_size,
        data_seed=args.data_seed, seed=args.seed, device=args.device, storage=args.storage,
        n_trials=args.n_trials, progress=not args.no_progress,
    )
    weights = ", ".join(f"{m}={w:.3f}" for m, w in zip(spec["members"], spec["weights"]))
    print(f"weights: {weights}")
    print(f"training Kendall tau: {spec['train_kendall']:.3f} on {len(spec['train_cells'])} "
          f"labelled cells")
    print(f"saved {args.out}; use it as --proxy learned_ensemble "
          f"--proxy-params '{{\"path\": \"{args.out}\"}}'")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit-ensemble", formatter_class=Formatter,
                       help="fit a learned proxy ensemble on labelled cells "
                            "(zcnas.ensembles.fit_ensemble)")
    p.add_argument("--out", required=True, help="JSON file to write")
    add_space_arg(p)
    add_proxy_args(p, default=DEFAULT_MEMBERS, aliases=["--members"])
    add_benchmark_args(p)
    p.add_argument("--n-train", type=positive, default=100, help="labelled training cells")
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--pool-size", type=positive, default=256,
                   help="reference pool for quantiles")
    p.add_argument("--pool-seed", type=int, default=0)
    p.add_argument("--n-trials", type=positive, default=300,
                   help="Optuna trials for the weights")
    add_progress_arg(p)
    add_data_args(p)
    add_run_args(p, cache=False)
    p.set_defaults(func=_run)
