"""``zcnas nni``: run an NNI strategy in-process (:func:`zcnas.search.nni.run_strategy`)."""

from __future__ import annotations

import argparse
import json
import logging

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_data_args
from zcnas.cli._common import add_json_arg
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_proxy_args
from zcnas.cli._common import add_run_args
from zcnas.cli._common import add_space_arg
from zcnas.cli._common import json_kwargs
from zcnas.cli._common import positive
from zcnas.cli._common import proxy_params
from zcnas.exceptions import ZcnasError


# == zcnas.search.nni.STRATEGIES / ASSISTED_STRATEGIES (literal: --help imports nothing heavy)
STRATEGIES = ("Random", "GridSearch", "RegularizedEvolution", "PolicyBasedRL", "TPE")
ASSISTED_STRATEGIES = ("Random", "RegularizedEvolution", "PolicyBasedRL")


def _run(args: argparse.Namespace) -> int:
    if args.strategy not in STRATEGIES:
        raise ZcnasError(
            f"unknown NNI strategy {args.strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    from zcnas.data import load_batch
    from zcnas.search.nni import require_nni
    from zcnas.search.nni import run_strategy

    require_nni()  # prints the install command and exits 2 when NNI is missing
    if not args.verbose:
        import optuna

        logging.getLogger("nni").setLevel(logging.WARNING)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.assisted and not args.benchmark:
        raise ZcnasError("--assisted needs --benchmark NAME (the ground truth to search)")
    proxy = None
    if args.proxy:
        from zcnas.scoring import resolve

        proxy = resolve(args.proxy, **proxy_params(args.proxy_params, [args.proxy]).get(
            args.proxy, {}))
    elif not args.benchmark:
        raise ZcnasError("give --proxy NAME (or --benchmark NAME for a ground-truth search)")
    uses_proxy = proxy is not None and (args.assisted or not args.benchmark)
    batch = (load_batch(args.data, args.batch_size, args.data_seed, args.num_classes)
             if uses_proxy else None)
    run = run_strategy(
        args.space, proxy, args.strategy, n_trials=args.n_trials, batch=batch, seed=args.seed,
        storage=args.storage, study_name=args.study_name,
        strategy_kwargs=json_kwargs(args.strategy_kwargs, "--strategy-kwargs"), benchmark=args.benchmark,
        dataset=args.dataset, metric=args.metric, assisted=args.assisted,
        n_candidates=args.n_candidates, device=args.device, use_cache=not args.no_cache,
        experiment_dir=args.experiment_dir, progress=not args.no_progress,
    )
    best = run.best()
    if args.json:
        print(json.dumps({
            "study_name": run.study_name, "storage": run.storage, "strategy": run.strategy,
            "objective": run.objective, "direction": run.direction, "n_trials": run.n_trials,
            "n_failed": run.n_failed, "best_key": best[0] if best else None,
            "best_value": best[1] if best else None, "seconds": run.seconds,
        }))
    else:
        print(f"study {run.study_name!r} in {run.storage}: {run.strategy} on {run.objective}, "
              f"{run.n_trials} trials ({run.n_failed} failed) in {run.seconds:.1f}s")
        if best:
            print(f"best\t{best[1]:.6g}\t{best[0]}")
    return 0 if best else 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nni", formatter_class=Formatter,
        help="search with an NNI strategy, in-process (zcnas.search.nni.run_strategy)",
        description="Run one of NNI's strategies in this process: it maximises the proxy score, "
                    "or with --benchmark the ground truth (--assisted: proxy pre-screening). "
                    "Every trial is stored in the Optuna study --study-name at --storage. "
                    "Needs: pip install 'zcnas[nni]'.",
    )
    p.add_argument("--strategy", default="RegularizedEvolution",
                   help=f"one of {', '.join(STRATEGIES)}")
    p.add_argument("--strategy-kwargs", default=None,
                   help="JSON object of options for NNI's strategy, e.g. "
                        "'{\"population_size\": 10, \"sample_size\": 3}'")
    add_space_arg(p)
    add_proxy_args(p, many=False)
    p.add_argument("--n-trials", type=positive, default=20,
                   help="models NNI evaluates (proxy scores, or benchmark queries)")
    p.add_argument("--study-name", default=None,
                   help="Optuna study (default nni-<strategy>-<objective>-<space>-seed<seed>)")
    p.add_argument("--benchmark", default=None, help="search this benchmark's ground truth")
    p.add_argument("--dataset", default="cifar10", help="benchmark dataset")
    p.add_argument("--metric", default="test", help="benchmark metric")
    p.add_argument("--assisted", action="store_true",
                   help=f"proxy-assisted search ({', '.join(ASSISTED_STRATEGIES)}): each "
                        f"proposal is the proxy argmax of --n-candidates candidates")
    p.add_argument("--n-candidates", type=positive, default=10)
    p.add_argument("--experiment-dir", default=None,
                   help="run as an NNI NasExperiment with checkpoints and logs in this folder")
    add_json_arg(p)
    add_progress_arg(p)
    add_data_args(p)
    add_run_args(p)
    p.set_defaults(func=_run)
