"""``zcnas fit-ensemble``: learn member weights on labelled cells (zcnas.ensembles)."""

from __future__ import annotations

import argparse

from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import split_names
from zcnas.ensembles import fit_ensemble
from zcnas.proxies._ensemble import DEFAULT_MEMBERS


def _run(args: argparse.Namespace) -> int:
    spec = fit_ensemble(
        out=args.out, space=args.space, members=split_names(args.members),
        benchmark=args.benchmark, dataset=args.dataset, metric=args.metric,
        n_train=args.n_train, train_seed=args.train_seed, pool_size=args.pool_size,
        pool_seed=args.pool_seed, data=args.data, batch_size=args.batch_size,
        data_seed=args.data_seed, seed=args.seed, device=args.device, storage=args.storage,
        n_trials=args.n_trials, progress=not args.quiet,
    )
    weights = ", ".join(f"{m}={w:.3f}" for m, w in zip(spec["members"], spec["weights"]))
    print(f"weights: {weights}")
    print(f"training Kendall tau: {spec['train_kendall']:.3f} on {len(spec['train_cells'])} cells")
    print(f"saved {args.out}; use it as --proxy learned_ensemble "
          f"--proxy-params '{{\"path\": \"{args.out}\"}}'")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit-ensemble", help="fit a learned proxy ensemble on labelled cells "
                                            "(zcnas.ensembles.fit_ensemble)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--space", default="nb201")
    p.add_argument("--members", default=",".join(DEFAULT_MEMBERS))
    p.add_argument("--benchmark", default="nb201")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--metric", default="test")
    p.add_argument("--n-train", type=int, default=100, help="labelled training cells")
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--pool-size", type=int, default=256, help="reference pool for quantiles")
    p.add_argument("--pool-seed", type=int, default=0)
    p.add_argument("--n-trials", type=int, default=300, help="Optuna trials for the weights")
    p.add_argument("--quiet", action="store_true")
    add_data_args(p)
    add_run_args(p)
    p.set_defaults(func=_run)
