"""``zcnas compare STUDY.toml``: proxy-assisted vs vanilla search
(:func:`zcnas.search.compare.compare`)."""

from __future__ import annotations

import argparse
import logging

from zcnas.cli._common import Formatter
from zcnas.cli._common import add_progress_arg
from zcnas.cli._common import add_storage_arg
from zcnas.cli._common import positive


def _run(args: argparse.Namespace) -> int:
    from zcnas.search.compare import compare

    logging.getLogger("zcnas.search.compare").setLevel(logging.INFO)
    result = compare(args.study_file, args.quick, seeds=args.seeds, storage=args.storage,
                     out=args.out, run=not args.report_only, progress=not args.no_progress)
    print(f"{len(result.ran)} runs now, {len(result.skipped_done)} already finished, "
          f"{len(result.skipped)} skipped")
    for reason in sorted(set(result.skipped.values())):
        print(f"skipped: {reason}")
    summary = result.files.get("summary.md")
    if summary is not None:  # the table itself, not only where it is
        print(summary.read_text().rstrip())
    for name, path in result.files.items():
        print(f"{name}\t{path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", formatter_class=Formatter,
        help="proxy-assisted vs vanilla search over seeds (zcnas.search.compare.compare)",
        description="Run every unfinished (algorithm, mode, seed, dataset) cell of a compare "
                    "file, then write a table (mean ± std, paired tests), CSVs and best-so-far "
                    "plots. Rerunning skips finished cells.",
    )
    p.add_argument("study_file", help="e.g. studies/gradsign_vs_vanilla_nb201.toml")
    p.add_argument("--quick", action="store_true",
                   help="the file's [quick] overrides: a CI-sized run (studies <name>-quick-*)")
    p.add_argument("--seeds", type=positive, default=None, help="run seeds 0..N-1")
    add_storage_arg(p, "SQLAlchemy URL (default: the file's, else $ZCNAS_STORAGE or "
                       "sqlite:///zcnas.db)")
    p.add_argument("--out", default="zcnas_out/compare", help="report folder")
    p.add_argument("--report-only", action="store_true",
                   help="write the report from the stored runs; run nothing")
    add_progress_arg(p)
    p.set_defaults(func=_run)
