"""Benchmarks (ground truth). Built-ins: ``nb201``, ``nats``, ``darts_yang214``, ``darts_swap1000``,
``nb301``, ``tnb101_micro``, ``tnb101_macro``. Plugins: group ``zcnas.benchmarks``."""

from zcnas.benchmarks import _nb201  # noqa: F401,I001
from zcnas.benchmarks import _nats  # noqa: F401,I001  (nats_bench is imported lazily)
from zcnas.benchmarks import _darts  # noqa: F401,I001  (darts_yang214, darts_swap1000, nb301)
from zcnas.benchmarks import _tnb101  # noqa: F401,I001  (tnb101_micro, tnb101_macro)
from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._nats import NATSBenchmark
from zcnas.benchmarks._nb201 import NB201Benchmark
from zcnas.benchmarks._registry import BENCHMARKS
from zcnas.benchmarks._registry import get_benchmark
from zcnas.benchmarks._registry import list_benchmarks
from zcnas.benchmarks._registry import register_benchmark


__all__ = [
    "BENCHMARKS", "Benchmark", "NATSBenchmark", "NB201Benchmark", "get_benchmark", "list_benchmarks",
    "register_benchmark",
]
