"""Benchmarks (ground truth). Built-ins: ``nb201``, ``nats``, ``nb101``, ``nats_sss``,
``darts_yang214``, ``darts_swap1000``, ``nb301``, ``tnb101_micro``, ``tnb101_macro``. Plugins:
group ``zcnas.benchmarks``."""

from zcnas.benchmarks import _nb201  # noqa: F401,I001
from zcnas.benchmarks import _nats  # noqa: F401,I001  (nats_bench is imported lazily)
from zcnas.benchmarks import _nb101  # noqa: F401,I001
from zcnas.benchmarks import _nats_sss  # noqa: F401,I001
from zcnas.benchmarks import _darts  # noqa: F401,I001  (darts_yang214, darts_swap1000, nb301)
from zcnas.benchmarks import _tnb101  # noqa: F401,I001  (tnb101_micro, tnb101_macro)
from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._base import DatasetInfo
from zcnas.benchmarks._cost import FlopsCostModel
from zcnas.benchmarks._cost import nb201_fidelity
from zcnas.benchmarks._nats import NATSBenchmark
from zcnas.benchmarks._nats_sss import NATSSizeBenchmark
from zcnas.benchmarks._nb101 import NB101Benchmark
from zcnas.benchmarks._nb201 import NB201Benchmark
from zcnas.benchmarks._registry import BENCHMARKS
from zcnas.benchmarks._registry import get_benchmark
from zcnas.benchmarks._registry import list_benchmarks
from zcnas.benchmarks._registry import register_benchmark


#: the benchmark every command and function uses when none is named
DEFAULT_BENCHMARK = "nb201"

__all__ = [
    "BENCHMARKS", "Benchmark", "DEFAULT_BENCHMARK", "DatasetInfo", "FlopsCostModel",
    "NATSBenchmark", "NATSSizeBenchmark", "NB101Benchmark", "NB201Benchmark", "get_benchmark",
    "list_benchmarks", "nb201_fidelity", "register_benchmark",
]
