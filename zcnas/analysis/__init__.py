"""Analysis: how well proxies rank architectures (``correlate``) and the statistics behind
every table (rank correlation, paired differences, paired tests over seeds)."""

from zcnas.analysis._card import CardRow
from zcnas.analysis._card import card_row
from zcnas.analysis._card import format_card
from zcnas.analysis._card import ndcg_at
from zcnas.analysis._card import partial_tau
from zcnas.analysis._card import regret_at
from zcnas.analysis._correlate import DEFAULT_PROXIES
from zcnas.analysis._correlate import CorrelateResult
from zcnas.analysis._correlate import benchmark_keys
from zcnas.analysis._correlate import compare_ensembles
from zcnas.analysis._correlate import correlate
from zcnas.analysis._correlate import evaluation_card
from zcnas.analysis._correlate import format_agreement
from zcnas.analysis._correlate import format_comparisons
from zcnas.analysis._correlate import format_summary
from zcnas.analysis._correlate import sample_keys
from zcnas.analysis._correlate import summarize
from zcnas.analysis._correlate import write_outputs
from zcnas.analysis._stats import PairedDifference
from zcnas.analysis._stats import RankCorrelation
from zcnas.analysis._stats import holm
from zcnas.analysis._stats import mean_std
from zcnas.analysis._stats import paired_difference
from zcnas.analysis._stats import paired_test
from zcnas.analysis._stats import rank_correlation
from zcnas.analysis._transfer import SpaceScores
from zcnas.analysis._transfer import TransferRow
from zcnas.analysis._transfer import read_correlate_dir
from zcnas.analysis._transfer import select_members
from zcnas.analysis._transfer import transfer


__all__ = [
    "CardRow", "CorrelateResult", "DEFAULT_PROXIES", "PairedDifference", "RankCorrelation",
    "SpaceScores", "TransferRow",
    "benchmark_keys", "card_row", "compare_ensembles", "correlate", "evaluation_card",
    "format_agreement", "format_card", "format_comparisons", "format_summary", "holm",
    "mean_std",
    "ndcg_at", "paired_difference", "paired_test", "partial_tau", "rank_correlation",
    "read_correlate_dir", "regret_at", "sample_keys", "select_members", "summarize", "transfer",
    "write_outputs",
]
