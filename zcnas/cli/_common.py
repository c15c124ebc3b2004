"""Argument groups shared by several subcommands (one definition each)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from zcnas.exceptions import ZcnasError


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="cifar10",
                   help="cifar10 (shared sample), synthetic, npz:<file> or folder:<dir>")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data-seed", type=int, default=0, help="which images form the batch")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier width (default: the data's classes)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="weight-initialisation seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--storage", default=None,
                   help="SQLAlchemy URL of the score cache (default $ZCNAS_STORAGE or "
                        "sqlite:///zcnas.db)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")


def parse_params(text: str | None) -> dict[str, Any]:
    """``--proxy-params '{"variant": "mean"}'`` -> dict; a clear error otherwise."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZcnasError(f"--proxy-params must be a JSON object, e.g. '{{\"k\": 1}}': {exc}") from None
    if not isinstance(value, dict):
        raise ZcnasError("--proxy-params must be a JSON object, e.g. '{\"k\": 1}'")
    return value


def split_names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]
