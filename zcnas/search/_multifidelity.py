"""A two-fidelity benchmark objective for Optuna's pruners (BOHB-like search: TPE + Hyperband).

NAS-Bench-201's shared tables hold two training lengths: 12 epochs (``valid_12ep``) and 200
epochs (``valid``, a 200-epoch validation accuracy disjoint from the test images). Each trial
queries the low fidelity, reports it at step ``low_step`` (12), asks the pruner, and only if
it survives queries the high fidelity, reports it at step ``high_step`` (200) and returns it.
Each rung is charged its own simulated training time (the benchmark cost model: a 200-epoch run
from scratch costs 200 epochs, as hpbandster-style BOHB retrains each budget from scratch), so a
promoted trial costs both runs.
"""

from __future__ import annotations

import time
from typing import Any

import optuna

from zcnas.benchmarks import Benchmark
from zcnas.exceptions import DataError
from zcnas.exceptions import InvalidArchError
from zcnas.search._objectives import BenchmarkObjective
from zcnas.search._objectives import suggest_arch
from zcnas.search._study import set_trial_user_attrs
from zcnas.spaces import SearchSpace
from zcnas.version import __version__


class MultiFidelityObjective(BenchmarkObjective):
    """Low fidelity first (reported, prunable), then the high fidelity for survivors.

    User attributes as :class:`BenchmarkObjective` (``search_value`` is the last fidelity
    queried, ``train_seconds`` the sum of both runs' simulated time, ``queries`` 1 or 2) plus
    ``low_value``, ``high_value`` and ``fidelity`` (the last step reached). A pruned trial has
    no ``report_value``: its architecture was never trained to the end.
    """

    def __init__(self, space: SearchSpace | str, benchmark: Benchmark | str, *,
                 dataset: str = "cifar10", metric: str = "test",
                 low_metric: str = "valid_12ep", high_metric: str = "valid",
                 low_step: int = 12, high_step: int = 200, cost_model: Any = "auto",
                 cache: Any = None) -> None:
        super().__init__(space, benchmark, dataset=dataset, metric=metric,
                         search_metric=high_metric, cost_model=cost_model, cache=cache)
        if not 0 < low_step < high_step:
            raise DataError(f"need 0 < low_step ({low_step}) < high_step ({high_step})")
        self.low_metric = low_metric
        self.high_metric = high_metric
        self.low_step = low_step
        self.high_step = high_step

    def check(self) -> None:
        super().check()
        from zcnas.search._objectives import probe_key

        self.benchmark.validate(probe_key(self.space, self.benchmark), dataset=self.dataset,
                                metric=self.low_metric)

    def _seconds(self, arch: Any, metric: str) -> float | None:
        if self.cost_model is None:
            return None
        return float(self.cost_model.seconds(arch, self.dataset, metric))

    def __call__(self, trial: optuna.Trial) -> float:
        self.describe(trial.study)
        start = time.perf_counter()
        try:
            arch = suggest_arch(trial, self.space)
            key = self.space.key(arch)
            low = self.benchmark.query(key, dataset=self.dataset, metric=self.low_metric)
        except (InvalidArchError, DataError) as exc:
            set_trial_user_attrs(trial, {"fail_reason": str(exc), "queries": 0,
                                         "zcnas_version": __version__})
            return float("nan")
        low_s = self._seconds(arch, self.low_metric)
        attrs: dict[str, Any] = {
            "arch_key": key, "benchmark": self.benchmark.name, "dataset": self.dataset,
            "search_metric": self.low_metric, "search_value": low, "low_value": low,
            "report_metric": self.metric, "queries": 1, "fidelity": self.low_step,
            "train_seconds": low_s, "zcnas_version": __version__,
            "cost_model": None if self.cost_model is None else
            f"{getattr(self.cost_model, 'name', type(self.cost_model).__name__)}"
            f"/v{getattr(self.cost_model, 'version', '?')}",
        }
        trial.report(low, self.low_step)
        if trial.should_prune():
            attrs["query_seconds"] = time.perf_counter() - start
            set_trial_user_attrs(trial, attrs)
            raise optuna.TrialPruned()
        high = self.benchmark.query(key, dataset=self.dataset, metric=self.high_metric)
        high_s = self._seconds(arch, self.high_metric)
        trial.report(high, self.high_step)
        attrs.update(search_metric=self.high_metric, search_value=high, high_value=high,
                     queries=2, fidelity=self.high_step,
                     train_seconds=None if low_s is None or high_s is None else low_s + high_s,
                     report_value=self.benchmark.query(key, dataset=self.dataset,
                                                       metric=self.metric),
                     query_seconds=time.perf_counter() - start)
        set_trial_user_attrs(trial, attrs)
        return float(high)
