"""Deprecated alias of :mod:`zcnas.search.optuna` (kept for one release)."""

import warnings

from zcnas.benchmarks import FlopsCostModel  # noqa: F401  (was re-exported here)
from zcnas.benchmarks import nb201_fidelity  # noqa: F401
from zcnas.search.optuna import *  # noqa: F401,F403
from zcnas.search.optuna import __all__ as _all


__all__ = [*_all, "FlopsCostModel", "nb201_fidelity"]
warnings.warn("zcnas.integration.optuna moved to zcnas.search.optuna; the old name goes away "
              "in the next release", DeprecationWarning, stacklevel=2)
