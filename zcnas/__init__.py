"""zcnas: training-free neural architecture search with zero-cost proxies."""

from zcnas.benchmarks import Benchmark
from zcnas.benchmarks import get_benchmark
from zcnas.benchmarks import list_benchmarks
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.evaluate import score
from zcnas.evaluate import score_record
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.proxies import list_proxies
from zcnas.proxies import register_proxy
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.spaces import list_spaces
from zcnas.storage import ScoreCache
from zcnas.version import __version__


__all__ = [
    "Batch", "Benchmark", "Proxy", "ScoreCache", "SearchSpace", "ZcnasError", "__version__",
    "get_benchmark", "get_proxy", "get_space", "list_benchmarks", "list_proxies", "list_spaces",
    "load_batch", "register_proxy", "score", "score_record",
]
