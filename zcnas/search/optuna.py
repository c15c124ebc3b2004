"""Optuna integration: proxies and benchmarks as objectives, proxy-assisted samplers, and
studies in SQL beside the score cache.

Typical use::

    from zcnas import get_space, load_batch, ScoreCache
    from zcnas.integration.optuna import ProxyObjective, create_study

    objective = ProxyObjective("nb201", "synflow", load_batch("cifar10", 64),
                               cache=ScoreCache("sqlite:///zcnas.db"))
    study = create_study("nb201-synflow", storage="sqlite:///zcnas.db",
                         directions=objective.directions)
    study.optimize(objective, n_trials=100)
"""

from zcnas.integration._cost import FlopsCostModel
from zcnas.integration._cost import nb201_fidelity
from zcnas.integration._lock import StudyLock
from zcnas.integration._objectives import BenchmarkObjective
from zcnas.integration._objectives import ProxyObjective
from zcnas.integration._objectives import suggest_arch
from zcnas.integration._prescreen import ProxyPrescreenSampler
from zcnas.integration._prescreen import WarmupResult
from zcnas.integration._prescreen import warmup
from zcnas.integration._storage import TrialCounts
from zcnas.integration._storage import create_study
from zcnas.integration._storage import load_or_create
from zcnas.integration._storage import make_storage
from zcnas.integration._storage import optimize_exact
from zcnas.integration._storage import retried_numbers
from zcnas.integration._storage import trial_counts


__all__ = [
    "BenchmarkObjective", "FlopsCostModel", "ProxyObjective", "ProxyPrescreenSampler",
    "StudyLock", "TrialCounts", "WarmupResult", "create_study", "load_or_create", "make_storage",
    "nb201_fidelity", "optimize_exact", "retried_numbers", "suggest_arch", "trial_counts", "warmup",
]
