"""The ``zcnas`` command line. Each subcommand lives in its own module and only parses
arguments and calls the public Python API of the same name.

Adding a subcommand: write ``zcnas/cli/_<name>.py`` with ``add_parser(subparsers)`` that sets
``func`` (taking the parsed args, returning an exit code), and list the module in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from zcnas.exceptions import ZcnasError
from zcnas.version import __version__


COMMANDS = [
    "zcnas.cli._basic",      # proxies, spaces, benchmarks, score
    "zcnas.cli._correlate",  # correlate
    "zcnas.cli._ensemble",   # fit-ensemble
    "zcnas.cli._nni",        # nni
    "zcnas.cli._bench",      # bench
    "zcnas.cli._run",        # run, report
    "zcnas.cli._scale",      # score-space
    "zcnas.cli._compare",    # compare
    "zcnas.cli._oneshot",    # oneshot train
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zcnas", description="Training-free NAS with zero-cost proxies."
    )
    parser.add_argument("--version", action="version", version=f"zcnas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ZcnasError as exc:
        print(f"zcnas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zcnas: interrupted; finished work is stored, run the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
