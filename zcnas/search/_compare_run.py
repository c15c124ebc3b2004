"""Running one compare cell in memory (``engine = "memory"``, and every zcnas-sampler cell).

The cell's study runs on Optuna's in-memory storage and is then copied into the SQL storage in
one pass (:func:`~zcnas.search._bulk.store_study`): a benchmark search makes ~30 SQL commits
per trial through ``zcnas run``'s machinery (heartbeats, locks, attributes), which on a small
machine costs more than the search itself. A cell is stored whole or not at all; an interrupted
one is run again from its start (proxy scores come from the cache). Proxy scores and the cost
model's FLOPs are read from the SQL score cache once per process
(:class:`~zcnas.search._features.MemoScoreCache`).
"""

from __future__ import annotations

from collections.abc import Mapping
import logging
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler

from zcnas.benchmarks import get_benchmark
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import ZcnasError
from zcnas.scoring import resolve
from zcnas.search._bulk import store_study
from zcnas.search._compare_config import Cell
from zcnas.search._compare_config import CompareConfig
from zcnas.search._compare_config import pruner_class
from zcnas.search._features import REFERENCE
from zcnas.search._features import MemberScorer
from zcnas.search._features import MemoScoreCache
from zcnas.search._features import is_free_member
from zcnas.search._multifidelity import MultiFidelityObjective
from zcnas.search._objectives import BenchmarkObjective
from zcnas.search._prescreen import ProxyPrescreenSampler
from zcnas.search._prescreen import warmup
from zcnas.search._run_config import sampler_class
from zcnas.search._run_config import sampler_params
from zcnas.search._study import describe_study
from zcnas.search._zcnas_samplers import make_zcnas_sampler
from zcnas.spaces import get_space


_logger = logging.getLogger(__name__)


class CellRunner:
    """Runs compare cells in this process, sharing one memo cache and one cost model."""

    def __init__(self, cfg: CompareConfig, *, fit_flops: bool = True) -> None:
        self.cfg = cfg
        self.space = get_space(cfg.space)
        self.bench = get_benchmark(cfg.benchmark)
        self.cache = MemoScoreCache(cfg.storage)
        self.cost = self.bench.cost_model(self.space)
        self._batches: dict[int, Batch] = {}
        self._preloaded: set[tuple[str, int]] = set()
        self._flops_loaded = not fit_flops
        self._reference: dict[str, dict[str, float]] | None = None

    # --- shared inputs ----------------------------------------------------------------------
    def batch(self, dataset: str) -> Batch:
        classes = self.cfg.proxy_classes(dataset)
        if classes not in self._batches:
            d = self.cfg.data
            self._batches[classes] = load_batch(d["source"], d["batch_size"], d["seed"], classes)
        return self._batches[classes]

    def _preload(self, names: list[str], params: Mapping[str, Any], dataset: str) -> None:
        batch = self.batch(dataset)
        for name in names:
            if (name, batch.num_classes) in self._preloaded or is_free_member(name):
                continue
            n = self.cache.preload(self.space, resolve(name, **params.get(name, {})), batch,
                                   self.cfg.proxy_init_seed)
            _logger.info("preloaded %d cached %s scores", n, name)
            self._preloaded.add((name, batch.num_classes))

    def preload_flops(self, n_fit: int = 40, n_check: int = 10) -> None:
        """Give the cost model every cell's FLOPs without building 15,625 networks per head.

        Per input head (resolution, classes) of the benchmark's datasets: ``n_fit + n_check``
        seeded cells are built and measured; FLOPs are fitted as an intercept plus one term
        per (parameter, choice) (least squares on the one-hot encoding: exact when each
        operation's cost depends only on its position, as in NB201's cells); only if the fit
        reproduces the ``n_check`` held-out cells to 1e-6 MFLOPs are the fitted values
        preloaded for every key of the benchmark, else FLOPs are measured on demand."""
        if self._flops_loaded or not hasattr(self.cost, "preload"):
            return
        self._flops_loaded = True
        from zcnas.search._surrogate import one_hot

        keys = self.bench.keys()
        if not keys:
            return
        archs = [self.space.as_arch(self.bench.encoding(k)) for k in keys]
        keys = [self.space.key(a) for a in archs]
        try:
            x_all = np.hstack([np.ones((len(archs), 1)), one_hot(self.space, archs)])
        except Exception:  # noqa: BLE001 - non-categorical space: measure on demand
            return
        rng = np.random.default_rng(0)
        pick = rng.choice(len(archs), size=min(n_fit + n_check, len(archs)), replace=False)
        fit, check = pick[:n_fit], pick[n_fit:]
        heads = {(info.input_size[-1], info.num_classes)
                 for info in self.bench.dataset_info.values()}
        for size, classes in sorted(heads):
            y = np.array([self.cost.mflops(archs[i], size, classes) for i in pick])
            coef, *_ = np.linalg.lstsq(x_all[fit], y[:len(fit)], rcond=None)
            if np.abs(x_all[check] @ coef - y[len(fit):]).max() > 1e-6:
                _logger.info("FLOPs are not additive per operation at %dpx/%d classes: "
                             "measured on demand", size, classes)
                continue
            self.cost.preload(dict(zip(keys, (x_all @ coef).tolist())), size, classes)
            _logger.info("FLOPs of %d cells at %dpx/%d classes from the per-operation fit",
                         len(keys), size, classes)

    # --- one cell ---------------------------------------------------------------------------
    def objective(self, cell: Cell) -> BenchmarkObjective:
        cfg, a = self.cfg, cell.algorithm
        if a.fidelity:
            f = dict(a.fidelity)
            return MultiFidelityObjective(
                self.space, self.bench, dataset=cell.dataset, metric=cfg.metric,
                low_metric=f.get("low_metric", cfg.search_metric),
                high_metric=f.get("high_metric", "valid"), low_step=int(f.get("low_step", 12)),
                high_step=int(f.get("high_step", 200)), cost_model=self.cost)
        return BenchmarkObjective(self.space, self.bench, dataset=cell.dataset, metric=cfg.metric,
                                  search_metric=cfg.search_metric, cost_model=self.cost)

    def scorer(self, cell: Cell) -> MemberScorer | None:
        m = cell.mode
        if not m.assisted:
            return None
        params: dict[str, Mapping[str, Any]] = (
            dict(m.member_params) if m.members else {m.proxies[0]: dict(m.proxy_params)})
        self._preload(m.proxies, params, cell.dataset)
        return MemberScorer(self.space, m.proxies, self.batch(cell.dataset), cache=self.cache,
                            init_seed=self.cfg.proxy_init_seed, device=self.cfg.device,
                            member_params=params, tables=self.tables(m.proxies))

    def tables(self, members: list[str]) -> dict[str, dict[str, float]]:
        """``reference:<name>`` members: the benchmark's precomputed scores of its first dataset
        (NB201: NAS-Bench-Suite-Zero's CIFAR-10 table, the 9,445 cells without unreachable
        operations), whatever the target; like every proxy of a compare file, they are
        computed on CIFAR-10."""
        wanted = [m for m in members if m.startswith(REFERENCE)]
        if not wanted:
            return {}
        if self._reference is None:
            self._reference = self.bench.reference_scores(self.bench.datasets[0])
        out = {}
        for m in wanted:
            name = m[len(REFERENCE):]
            if name not in self._reference:
                raise ZcnasError(f"{self.bench.name} has no reference scores {name!r}; it has "
                                 f"{', '.join(self._reference) or 'none'}")
            out[m] = self._reference[name]
        return out

    def sampler(self, cell: Cell) -> BaseSampler:
        cfg, a, m = self.cfg, cell.algorithm, cell.mode
        native = m.assisted and m.assist == "native"
        if a.backend == "zcnas":
            kwargs = {**a.kwargs, **m.kwargs}
            if native and m.n_candidates is not None:
                kwargs["n_candidates"] = m.n_candidates
            base: BaseSampler = make_zcnas_sampler(
                a.sampler or "", self.space, scorer=self.scorer(cell) if native else None,
                seed=cell.seed, kwargs=kwargs)
        else:
            cls = sampler_class(a.sampler or "")
            kwargs = dict(a.kwargs)
            if "seed" in sampler_params(cls) and "seed" not in kwargs:
                kwargs["seed"] = cell.seed
            base = cls(**kwargs)
        if m.assisted and m.assist == "preselect":
            proxy = m.proxies[0]
            self._preload([proxy], {proxy: dict(m.proxy_params)}, cell.dataset)
            return ProxyPrescreenSampler(
                base, self.space, resolve(proxy, **m.proxy_params), self.batch(cell.dataset),
                n_candidates=m.n_candidates or cfg.n_candidates, cache=self.cache, seed=cell.seed,
                proposals=a.proposals, device=cfg.device,  # type: ignore[arg-type]
                init_seed=cfg.proxy_init_seed)
        return base

    def run(self, cell: Cell, rdb: Any) -> None:
        """Run ``cell`` in memory and store it as the study ``cell.study_name`` in ``rdb``."""
        cfg, a, m = self.cfg, cell.algorithm, cell.mode
        self.preload_flops()
        objective = self.objective(cell)
        pruner = None
        if a.pruner is not None:
            pruner = pruner_class(a.pruner)(**dict(a.pruner_kwargs))
        study = optuna.create_study(direction="maximize", sampler=self.sampler(cell),
                                    pruner=pruner, study_name=cell.study_name)
        describe_study(study, kind="benchmark", space=cfg.space, objective=cfg.search_metric,
                       metric_names=[objective.search_metric], benchmark=cfg.benchmark,
                       dataset=cell.dataset, metric=cfg.metric,
                       sampler=a.sampler or a.strategy, assist=m.assist if m.assisted
                       else "none", backend=a.backend, engine="memory")
        if m.assisted and m.assist == "warmup":
            proxy = m.proxies[0]
            self._preload([proxy], {proxy: dict(m.proxy_params)}, cell.dataset)
            warmup(study, self.space, resolve(proxy, **m.proxy_params), self.batch(cell.dataset),
                   pool=m.warmup, top_k=min(m.warmup_top_k, cfg.queries(cell.dataset)),
                   seed=cell.seed, cache=self.cache, device=cfg.device,
                   init_seed=cfg.proxy_init_seed)
        study.optimize(objective, n_trials=cfg.queries(cell.dataset), gc_after_trial=False)
        if cell.study_name in optuna.get_all_study_names(storage=rdb):
            optuna.delete_study(study_name=cell.study_name, storage=rdb)
        store_study(study, rdb, cell.study_name)

