"""zcnas: training-free neural architecture search with zero-cost proxies.

The names below load lazily (PEP 562): ``import zcnas`` and ``zcnas --help`` do not import
torch or Optuna until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

from zcnas.exceptions import ZcnasError
from zcnas.version import __version__


if TYPE_CHECKING:  # pragma: no cover
    from zcnas.benchmarks import Benchmark
    from zcnas.benchmarks import get_benchmark
    from zcnas.benchmarks import list_benchmarks
    from zcnas.data import Batch
    from zcnas.data import load_batch
    from zcnas.proxies import Proxy
    from zcnas.proxies import register_proxy
    from zcnas.scoring import Evaluator
    from zcnas.scoring import list_scorers as list_proxies
    from zcnas.scoring import register_evaluator
    from zcnas.scoring import resolve as get_proxy
    from zcnas.scoring import score
    from zcnas.scoring import score_model
    from zcnas.scoring import score_model_record
    from zcnas.scoring import score_record
    from zcnas.spaces import SearchSpace
    from zcnas.spaces import get_space
    from zcnas.spaces import list_spaces
    from zcnas.storage import ScoreCache


_EXPORTS: dict[str, str | tuple[str, str]] = {
    "Batch": "zcnas.data", "load_batch": "zcnas.data",
    "Benchmark": "zcnas.benchmarks", "get_benchmark": "zcnas.benchmarks",
    "list_benchmarks": "zcnas.benchmarks",
    "Proxy": "zcnas.proxies", "register_proxy": "zcnas.proxies",
    # proxies and evaluators (ensembles, ...) share one namespace at the top level
    "get_proxy": ("zcnas.scoring", "resolve"), "list_proxies": ("zcnas.scoring", "list_scorers"),
    "Evaluator": "zcnas.scoring", "register_evaluator": "zcnas.scoring", "score": "zcnas.scoring",
    "score_record": "zcnas.scoring", "score_model": "zcnas.scoring",
    "score_model_record": "zcnas.scoring",
    "SearchSpace": "zcnas.spaces", "get_space": "zcnas.spaces", "list_spaces": "zcnas.spaces",
    "ScoreCache": "zcnas.storage",
}

__all__ = [
    "Batch", "Benchmark", "Evaluator", "Proxy", "ScoreCache", "SearchSpace", "ZcnasError",
    "__version__", "get_benchmark", "get_proxy", "get_space", "list_benchmarks", "list_proxies",
    "list_spaces", "load_batch", "register_evaluator", "register_proxy", "score", "score_model",
    "score_model_record", "score_record",
]


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'zcnas' has no attribute {name!r}")
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
