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
from typing import NoReturn

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


class ArgumentParser(argparse.ArgumentParser):
    """argparse with zcnas's error style: one line ``zcnas: error: ...`` naming the fix, exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"zcnas: error: {message}; see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a bad argument (2, one line printed)
        return int(exc.code or 0)
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
    except Exception as exc:  # a database failure that surfaced through a library
        from zcnas.storage import as_storage_error

        error = as_storage_error(exc)
        if error is None:
            raise
        print(f"zcnas: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
