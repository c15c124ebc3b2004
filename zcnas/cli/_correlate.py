"""``zcnas correlate`` (placeholder until the correlate module lands)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    del sub
