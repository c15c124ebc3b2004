"""``zcnas compare STUDY.toml``: proxy-assisted vs vanilla search (:func:`zcnas.compare.compare`)."""

from __future__ import annotations

import argparse
import logging

from zcnas.compare import compare


def _run(args: argparse.Namespace) -> int:
    logging.getLogger("zcnas.compare").setLevel(logging.INFO)
    result = compare(args.study_file, args.quick, seeds=args.seeds, storage=args.storage,
                     out=args.out, run=not args.report_only)
    print(f"{len(result.ran)} runs now, {len(result.skipped_done)} already finished, "
          f"{len(result.skipped)} skipped")
    for reason in sorted(set(result.skipped.values())):
        print(f"skipped: {reason}")
    for name, path in result.files.items():
        print(f"{name}\t{path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="proxy-assisted vs vanilla search over seeds (zcnas.compare.compare)",
        description="Run every unfinished (algorithm, mode, seed, dataset) cell of a compare "
                    "file, then write a table (mean ± std, paired tests), CSVs and best-so-far "
                    "plots. Rerunning skips finished cells.",
    )
    p.add_argument("study_file", help="e.g. studies/gradsign_vs_vanilla_nb201.toml")
    p.add_argument("--quick", action="store_true",
                   help="the file's [quick] overrides: a CI-sized run (studies <name>-quick-*)")
    p.add_argument("--seeds", type=int, default=None, help="run seeds 0..N-1")
    p.add_argument("--storage", default=None,
                   help="SQLAlchemy URL (default: the file's, else $ZCNAS_STORAGE)")
    p.add_argument("--out", default="zcnas_out/compare", help="report folder")
    p.add_argument("--report-only", action="store_true",
                   help="write the report from the stored runs; run nothing")
    p.set_defaults(func=_run)
