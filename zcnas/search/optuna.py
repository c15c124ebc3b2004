"""Optuna integration: proxies and benchmarks as objectives, proxy-assisted samplers, and
studies in SQL beside the score cache.

zcnas's own samplers propose whole architectures (``RegularizedEvolutionSampler``,
``ReinforceSampler`` as NAS-Bench-201 ran them; ``GPSurrogateSampler``: GP-BO with proxy scores
as features; ``OnlineEnsembleSampler``: pre-selection by an ensemble refitted on the study's
trials; ``FreeREASampler``; ``RoBoTSampler``), each assisted by a ``MemberScorer`` of one or
more proxies; ``MultiFidelityObjective`` drives Optuna's pruners on two benchmark fidelities.

Typical use::

    from zcnas import get_space, load_batch, ScoreCache
    from zcnas.search.optuna import ProxyObjective, create_study

    objective = ProxyObjective("nb201", "synflow", load_batch("cifar10", 64),
                               cache=ScoreCache("sqlite:///zcnas.db"))
    study = create_study("nb201-synflow", storage="sqlite:///zcnas.db",
                         directions=objective.directions)
    study.optimize(objective, n_trials=100)
"""

from zcnas.search._arch_samplers import ArchSampler
from zcnas.search._arch_samplers import RegularizedEvolutionSampler
from zcnas.search._arch_samplers import ReinforceSampler
from zcnas.search._bulk import store_study
from zcnas.search._evolution import FreeREASampler
from zcnas.search._evolution import OnlineEnsembleSampler
from zcnas.search._features import MemberScorer
from zcnas.search._features import MemoScoreCache
from zcnas.search._multifidelity import MultiFidelityObjective
from zcnas.search._objectives import BenchmarkObjective
from zcnas.search._objectives import ProxyObjective
from zcnas.search._objectives import suggest_arch
from zcnas.search._prescreen import ProxyPrescreenSampler
from zcnas.search._prescreen import WarmupResult
from zcnas.search._prescreen import warmup
from zcnas.search._study import TrialCounts
from zcnas.search._study import create_study
from zcnas.search._study import load_or_create
from zcnas.search._study import optimize_exact
from zcnas.search._study import retried_numbers
from zcnas.search._study import trial_counts
from zcnas.search._surrogate import GPSurrogateSampler
from zcnas.search._surrogate import RoBoTSampler
from zcnas.storage import StudyLock
from zcnas.storage import make_storage


__all__ = [
    "ArchSampler", "BenchmarkObjective", "FreeREASampler", "GPSurrogateSampler", "MemberScorer",
    "MemoScoreCache", "MultiFidelityObjective", "OnlineEnsembleSampler", "ProxyObjective",
    "ProxyPrescreenSampler", "RegularizedEvolutionSampler", "ReinforceSampler", "RoBoTSampler",
    "StudyLock", "TrialCounts", "WarmupResult", "create_study", "load_or_create", "make_storage",
    "optimize_exact", "retried_numbers", "store_study", "suggest_arch", "trial_counts", "warmup",
]
