"""The one vocabulary of flags every subcommand shares (each flag defined once, here).

=================================  ===========================================================
flag                               meaning (every command that has it)
=================================  ===========================================================
``--space NAME``                   search space (default ``nb201``)
``--proxy A[,B,...]``              proxy / evaluator name(s); ``--proxies``, ``--members``
                                   are deprecated spellings
``--proxy-params JSON``            ``{"gradsign": {"variant": "mean"}}`` (keyed by proxy); a
                                   flat ``{"variant": "mean"}`` is accepted with one proxy
``--benchmark NAME``               ground truth (default ``nb201``); ``--benchmark-path FILE``
``--dataset A[,B]`` ``--metric``   which ground truth
``--data`` ``--batch-size``        the batch a proxy sees; ``--data-seed`` which images;
``--num-classes``                  the classifier width
``--seed``                         weight-initialisation seed
``--device``                       ``cpu``, ``cuda``, ``cuda:N`` or ``auto``
``--storage URL``                  SQLAlchemy URL (default ``$ZCNAS_STORAGE`` or
                                   ``sqlite:///zcnas.db``)
``--threads N``                    torch threads (``--torch-threads`` is deprecated)
``--no-progress``                  no progress bar (``--quiet`` is deprecated)
``--json``                         print the result as JSON on stdout
``--out PATH``                     where files are written
=================================  ===========================================================
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import sys
from typing import Any

from zcnas.exceptions import ZcnasError


DEFAULT_SPACE = "nb201"  # == zcnas.spaces.DEFAULT_SPACE (kept literal: --help imports no torch)
DEFAULT_BENCHMARK = "nb201"  # == zcnas.benchmarks.DEFAULT_BENCHMARK


class Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every default."""


class _Deprecated(argparse.Action):
    """An old flag spelling: works as the new one, with a one-line notice on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str,
                 **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"zcnas: note: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def deprecated(p: argparse.ArgumentParser, old: str, new: str, dest: str, *,
               flag: bool = False) -> None:
    """Accept ``old`` as a deprecated spelling of ``new`` (same destination, hidden from
    ``--help``)."""
    p.add_argument(old, dest=dest, action=_Deprecated, new=new, nargs=0 if flag else None,
                   help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_space_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default=DEFAULT_SPACE, help="search space (`zcnas spaces`)")


def add_proxy_args(p: argparse.ArgumentParser, *, default: str | None = None,
                   required: bool = False, many: bool = True,
                   aliases: Sequence[str] = ()) -> None:
    """``--proxy`` (comma-separated when ``many``) and ``--proxy-params``."""
    what = "proxy or ensemble name(s), comma-separated" if many else "a proxy or ensemble name"
    p.add_argument("--proxy", default=default, required=required,
                   help=f"{what} (`zcnas proxies` lists them)")
    for old in aliases:
        deprecated(p, old, "--proxy", "proxy")
    p.add_argument("--proxy-params", default=None, metavar="JSON",
                   help='hyper-parameters: {"gradsign": {"variant": "mean"}} (or flat with one '
                        'proxy)')


def add_benchmark_args(p: argparse.ArgumentParser, *, default: str | None = DEFAULT_BENCHMARK,
                       datasets: bool = True) -> None:
    p.add_argument("--benchmark", default=default, help="ground truth (`zcnas benchmarks`)")
    p.add_argument("--benchmark-path", default=None, help="ground-truth file of the benchmark")
    if datasets:
        p.add_argument("--dataset", default=None,
                       help="ground-truth dataset(s), comma-separated, e.g. cifar10,cifar100,"
                            "imagenet16 (default: the benchmark's first)")
        p.add_argument("--metric", default=None,
                       help="benchmark metric (default: the benchmark's first, test for nb201)")


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="cifar10",
                   help="cifar10 (shared sample), synthetic, npz:<file> or folder:<dir>")
    p.add_argument("--batch-size", type=positive, default=64)
    p.add_argument("--data-seed", type=int, default=0, help="which images form the batch")
    p.add_argument("--num-classes", type=positive, default=None,
                   help="classifier width (default: the data's classes)")


def input_size(text: str | None) -> tuple[int, int, int] | None:
    """``--input-size C,H,W`` as a tuple (None when not given)."""
    if text is None:
        return None
    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise ZcnasError(f"--input-size {text!r} must be C,H,W, e.g. 3,32,32") from None
    if min(c, h, w) < 1:
        raise ZcnasError(f"--input-size {text!r} must be positive")
    return c, h, w


def add_input_size_arg(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--input-size", default=None, metavar="C,H,W", help=help)


def add_run_args(p: argparse.ArgumentParser, *, cache: bool = True) -> None:
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    add_storage_arg(p)
    if cache:
        p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")


def add_storage_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    p.add_argument("--storage", default=None,
                   help=help or "SQLAlchemy URL of the database (default $ZCNAS_STORAGE or "
                                "sqlite:///zcnas.db)")


def add_threads_arg(p: argparse.ArgumentParser, help: str = "torch.set_num_threads") -> None:
    p.add_argument("--threads", type=positive, default=None, help=help)
    deprecated(p, "--torch-threads", "--threads", "threads")


def add_progress_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    deprecated(p, "--quiet", "--no-progress", "no_progress", flag=True)


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def split_names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _json_object(text: str | None, flag: str, example: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZcnasError(f"{flag} must be a JSON object, e.g. '{example}': {exc}") from None
    if not isinstance(value, dict):
        raise ZcnasError(f"{flag} must be a JSON object, e.g. '{example}'")
    return value


def parse_params(text: str | None) -> dict[str, Any]:
    """A flat JSON object (one component's parameters), e.g. ``--strategy-kwargs``."""
    return _json_object(text, "--proxy-params", '{"k": 1}')


def proxy_params(text: str | None, proxies: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--proxy-params`` as ``{proxy: {param: value}}``: keyed by proxy name, or flat when
    exactly one proxy is given."""
    value = _json_object(text, "--proxy-params", '{"gradsign": {"variant": "mean"}}')
    if not value:
        return {}
    if all(k in proxies and isinstance(v, dict) for k, v in value.items()):
        return {k: dict(v) for k, v in value.items()}
    if len(proxies) == 1:
        return {proxies[0]: value}
    unknown = [k for k in value if k not in proxies]
    raise ZcnasError(f"--proxy-params keys must be names given in --proxy ({', '.join(proxies)});"
                     f" got {', '.join(map(repr, unknown))}: use "
                     f"'{{\"{proxies[0]}\": {{\"param\": 1}}}}'")


def json_kwargs(text: str | None, flag: str) -> dict[str, Any]:
    """A flat JSON object of keyword arguments for ``flag``."""
    return _json_object(text, flag, '{"population_size": 10}')
