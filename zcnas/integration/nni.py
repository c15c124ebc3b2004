"""Deprecated alias of :mod:`zcnas.search.nni` (kept for one release)."""

from typing import Any
import warnings

from zcnas.search import nni as _nni


warnings.warn("zcnas.integration.nni moved to zcnas.search.nni; the old name goes away in the "
              "next release", DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> Any:
    return getattr(_nni, name)
