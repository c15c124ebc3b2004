"""``zcnas run STUDY.toml`` and ``zcnas report`` (1:1 with :func:`zcnas.search.studies.run_study`
and :func:`zcnas.search.studies.report`)."""

from __future__ import annotations

import argparse
import logging

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_storage_arg
from zcnas.cli._common import positive


def _run(args: argparse.Namespace) -> int:
    import optuna

    from zcnas.search.studies import run_study

    if not args.verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("zcnas").setLevel(logging.INFO)
    results = run_study(args.study_file, n_trials=args.n_trials, storage=args.storage,
                        progress=not args.no_progress)
    for r in results:
        best = "" if r.best_value is None else (
            f", best {r.best_value:.6g} {r.best_arch}" if isinstance(r.best_value, float)
            else f", Pareto front of {len(r.best_value)}")
        print(f"{r.study_name}: {r.finished}/{r.n_trials} finished ({r.complete} COMPLETE, "
              f"{r.failed} FAIL), {r.ran_now} run now{best} [{r.storage}]")
    return 0


def _report(args: argparse.Namespace) -> int:
    from zcnas.search.studies import report

    written = report(args.storage, args.study, args.out, benchmark=args.benchmark,
                     dataset=args.dataset, metric=args.metric)
    for name, path in written.items():
        print(f"{name}\t{path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", formatter_class=Formatter,
                       help="run or continue a study file (zcnas.search.studies.run_study)")
    p.add_argument("study_file", help="a TOML study file, e.g. studies/smoke.toml")
    p.add_argument("--n-trials", type=positive, default=None,
                   help="total finished trials per study (overrides [study] n_trials)")
    add_storage_arg(p, "SQLAlchemy URL (overrides [study] storage; default $ZCNAS_STORAGE or "
                       "sqlite:///zcnas.db)")
    add_progress_arg(p)
    p.set_defaults(func=_run)

    p = sub.add_parser("report", formatter_class=Formatter,
                       help="plots and summary tables of studies (zcnas.search.studies.report)")
    add_storage_arg(p, "SQLAlchemy URL holding the studies (default $ZCNAS_STORAGE or "
                       "sqlite:///zcnas.db)")
    p.add_argument("--study", action="append", default=None,
                   help="study name (repeat for several: adds a comparison plot; default: the "
                        "only study in --storage)")
    p.add_argument("--out", default="zcnas_out", help="output folder")
    p.add_argument("--benchmark", default=None,
                   help="ground truth for proxy studies (default: what the study records)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--metric", default=None)
    p.set_defaults(func=_report)
