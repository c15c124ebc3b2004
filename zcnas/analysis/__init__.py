"""Analysis: how well proxies rank architectures (``correlate``) and the statistics behind
every table (rank correlation, paired differences, paired tests over seeds)."""

from zcnas.analysis._correlate import DEFAULT_PROXIES
from zcnas.analysis._correlate import CorrelateResult
from zcnas.analysis._correlate import benchmark_keys
from zcnas.analysis._correlate import compare_ensembles
from zcnas.analysis._correlate import correlate
from zcnas.analysis._correlate import format_comparisons
from zcnas.analysis._correlate import format_summary
from zcnas.analysis._correlate import sample_keys
from zcnas.analysis._correlate import summarize
from zcnas.analysis._correlate import write_outputs
from zcnas.analysis._stats import PairedDifference
from zcnas.analysis._stats import RankCorrelation
from zcnas.analysis._stats import mean_std
from zcnas.analysis._stats import paired_difference
from zcnas.analysis._stats import paired_test
from zcnas.analysis._stats import rank_correlation


__all__ = [
    "CorrelateResult", "DEFAULT_PROXIES", "PairedDifference", "RankCorrelation", "benchmark_keys",
    "compare_ensembles", "correlate", "format_comparisons", "format_summary", "mean_std",
    "paired_difference", "paired_test", "rank_correlation", "sample_keys", "summarize",
    "write_outputs",
]
