"""Proxy-assisted vs vanilla NAS on a benchmark: ``zcnas compare STUDY.toml`` (issue 5).

A compare file declares algorithms x modes x seeds x target datasets and a budget. Every cell
(algorithm, mode, seed, dataset) is one stored search:

* Optuna algorithms (random search, TPE) run through :func:`zcnas.studies.run_study`; an
  assisted mode wraps the sampler in :class:`~zcnas.integration._prescreen.ProxyPrescreenSampler`
  (the proxy's best of ``n_candidates`` proposals is queried).
* NNI algorithms (regularized evolution, policy-based RL) run through
  :func:`zcnas.integration.nni.run_strategy`; an assisted mode uses the G-REA / G-RL strategies
  of :mod:`zcnas.integration._nni_assisted`. Without NNI they are reported as skipped.

The search sees only ``search_metric`` (NB201 protocol: ``valid_12ep``); the report gives the
``metric`` (200-epoch test accuracy) of the incumbent. Proxy scores are cached in SQL and the
proxy's weight-initialisation seed is fixed (``proxy_init_seed``), so all cells share them and a
rerun computes none. Rerunning skips finished cells; an interrupted NNI cell is run again from
its start (proxy scores come from the cache).

Budgets: ``budget_queries`` benchmark queries per cell (the run length) and optionally
``budget_seconds`` (per dataset) of simulated time, read off the curves: the training time of
each query (benchmark cost model) plus the proxy's measured compute seconds of the architectures
it scored for that run (each charged once per run, whether or not another cell had already
cached it: the honest charge), and the papers' convention that does not charge the proxy.

Example::

    from zcnas.compare import compare
    result = compare("studies/gradsign_vs_vanilla_nb201.toml", quick=True, out="zcnas_out/cmp")
    print(result.files["summary.md"].read_text())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import hashlib
import json
import logging
import os
from pathlib import Path
import sys
from typing import Any

import optuna

from zcnas.benchmarks import get_benchmark
from zcnas.data import load_batch
from zcnas.evaluate import resolve_device
from zcnas.integration._storage import make_storage
from zcnas.integration._storage import trial_counts
from zcnas.proxies import get_proxy
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import default_storage
from zcnas.storage import redact
from zcnas.studies import StudyConfigError
from zcnas.studies import check_section
from zcnas.studies import read_toml
from zcnas.studies import run_study
from zcnas.studies import sampler_class


if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass


_logger = logging.getLogger(__name__)
__all__ = ["Algorithm", "Cell", "CompareConfig", "CompareResult", "Mode", "compare",
           "load_compare"]

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16": 120}
BACKENDS = ("optuna", "nni")
_COMPARE_KEYS: dict[str, tuple[Any, Any]] = {
    "name": (str, ...), "storage": (str, None), "space": (str, "nb201"),
    "benchmark": (str, "nb201"), "datasets": (list, ["cifar10"]),
    "search_metric": (str, "valid_12ep"), "metric": (str, "test"), "seeds": ((int, list), 20),
    "budget_queries": (int, 100), "budget_seconds": (dict, {}),
    "algorithms": (list, None), "modes": (list, None), "n_candidates": (int, 10),
    "proxy_init_seed": (int, 0), "bootstrap": (int, 10_000),
}
_DATA_KEYS: dict[str, tuple[Any, Any]] = {
    "source": (str, "cifar10"), "batch_size": (int, 64), "seed": (int, 0)}
_ALGO_KEYS: dict[str, tuple[Any, Any]] = {
    "label": (str, None), "backend": (str, ...), "sampler": (str, None), "strategy": (str, None),
    "kwargs": (dict, {}), "proposals": (str, "base")}
_MODE_KEYS: dict[str, tuple[Any, Any]] = {
    "label": (str, None), "proxy": (str, None), "proxy_params": (dict, {})}
_QUICK_KEYS = ("seeds", "budget_queries", "budget_seconds", "datasets", "algorithms", "modes",
               "n_candidates", "batch_size")


@dataclass(frozen=True)
class Algorithm:
    """One search algorithm: an Optuna sampler or an NNI strategy, with its options."""

    name: str
    label: str
    backend: str
    sampler: str | None = None
    strategy: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    proposals: str = "base"


@dataclass(frozen=True)
class Mode:
    """``vanilla`` (no proxy) or assisted by ``proxy`` (pre-selection / move proposal)."""

    name: str
    label: str
    proxy: str | None = None
    proxy_params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One search: (algorithm, mode, seed, dataset) and the study that stores it."""

    algorithm: Algorithm
    mode: Mode
    seed: int
    dataset: str
    study_name: str


@dataclass
class CompareConfig:
    """A validated compare file (see ``studies/gradsign_vs_vanilla_nb201.toml``)."""

    name: str
    storage: str
    space: str
    benchmark: str
    datasets: list[str]
    search_metric: str
    metric: str
    seeds: list[int]
    budget_queries: int
    budget_seconds: dict[str, float]
    algorithms: list[Algorithm]
    modes: list[Mode]
    n_candidates: int
    proxy_init_seed: int
    data: dict[str, Any]
    device: str
    bootstrap: int
    quick: bool = False

    def cells(self) -> list[Cell]:
        out = []
        for ds in self.datasets:  # seed-major: an interrupted run has balanced seeds
            for s in self.seeds:
                for a in self.algorithms:
                    for m in self.modes:
                        out.append(Cell(a, m, s, ds, f"{self.name}-{ds}-{a.name}-{m.name}-seed{s}"))
        return out

    def sha(self, cell: Cell) -> str:
        """Hash of everything that determines a cell's trials (not storage, budget or seeds)."""
        what: dict[str, Any] = {
            "space": self.space, "benchmark": self.benchmark, "dataset": cell.dataset,
            "search_metric": self.search_metric, "algorithm": cell.algorithm.__dict__,
            "mode": cell.mode.__dict__, "seed": cell.seed,
        }
        if cell.mode.proxy:
            what.update(n_candidates=self.n_candidates, proxy_init_seed=self.proxy_init_seed,
                        data=self.data)
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()
                              ).hexdigest()[:16]


def load_compare(path: str | os.PathLike[str] | Mapping[str, Any], *, quick: bool = False,
                 seeds: int | None = None, storage: str | None = None) -> CompareConfig:
    """Read and validate a compare file; ``quick`` applies its ``[quick]`` overrides and names
    the studies ``<name>-quick-...``; ``seeds`` (N) means seeds 0..N-1. Nothing is written."""
    if isinstance(path, Mapping):
        raw = dict(path)
    else:
        raw = read_toml(path, "compare file", "see studies/gradsign_vs_vanilla_nb201.toml")
    allowed = {"device", "compare", "data", "algorithm", "mode", "quick"}
    for k in raw:
        if k not in allowed:
            raise StudyConfigError(f"unknown section {k!r} in compare file; allowed: "
                                   f"{', '.join(sorted(allowed))}")
    c = check_section("compare", raw.get("compare", {}), _COMPARE_KEYS)
    data = check_section("data", raw.get("data", {}), _DATA_KEYS)
    quick_raw = dict(raw.get("quick", {}))
    for k in quick_raw:
        if k not in _QUICK_KEYS:
            raise StudyConfigError(f"unknown key {k!r} in [quick]; allowed: {', '.join(_QUICK_KEYS)}")
    if quick:
        for k, v in quick_raw.items():
            (data if k == "batch_size" else c)[k] = v
    if seeds is not None:
        if seeds < 1:
            raise StudyConfigError("--seeds must be >= 1")
        c["seeds"] = seeds
    seed_list = list(range(c["seeds"])) if isinstance(c["seeds"], int) else list(c["seeds"])
    if not seed_list or len(set(seed_list)) != len(seed_list) or not all(
            isinstance(s, int) for s in seed_list):
        raise StudyConfigError("[compare] seeds must be a count >= 1 or a list of distinct integers")
    algos = {n: check_section(f"algorithm.{n}", a, _ALGO_KEYS)
             for n, a in raw.get("algorithm", {}).items()}
    modes = {n: check_section(f"mode.{n}", m, _MODE_KEYS) for n, m in raw.get("mode", {}).items()}
    modes.setdefault("vanilla", {"label": "vanilla", "proxy": None, "proxy_params": {}})
    pick_a = c["algorithms"] if c["algorithms"] is not None else list(algos)
    pick_m = c["modes"] if c["modes"] is not None else list(modes)
    for kind, picked, known in (("algorithm", pick_a, algos), ("mode", pick_m, modes)):
        if not picked:
            raise StudyConfigError(f"[compare] lists no {kind}s")
        for n in picked:
            if n not in known:
                raise StudyConfigError(f"[compare] {kind} {n!r} has no [{kind}.{n}] table; "
                                       f"defined: {', '.join(known) or 'none'}")
    algorithms = [_algorithm(n, algos[n]) for n in pick_a]
    mode_list = [Mode(n, modes[n]["label"] or (f"{modes[n]['proxy']}-assisted"
                                              if modes[n]["proxy"] else n),
                      modes[n]["proxy"], dict(modes[n]["proxy_params"])) for n in pick_m]
    for m in mode_list:
        if m.proxy:
            get_proxy(m.proxy, **m.proxy_params)
    for k in ("budget_queries", "n_candidates", "bootstrap"):
        if c[k] < 1:
            raise StudyConfigError(f"[compare] {k} must be >= 1")
    for ds in c["datasets"]:
        if ds not in NUM_CLASSES:
            raise StudyConfigError(f"[compare] unknown dataset {ds!r}; choose from "
                                   f"{', '.join(NUM_CLASSES)}")
    budget_s = {str(k): float(v) for k, v in c["budget_seconds"].items()}
    if any(k not in NUM_CLASSES or v <= 0 for k, v in budget_s.items()):
        raise StudyConfigError("[compare] budget_seconds maps datasets (cifar10, cifar100, "
                               "imagenet16) to positive seconds")
    name = c["name"] + ("-quick" if quick else "")
    return CompareConfig(
        name=name, storage=storage or c["storage"] or default_storage(), space=c["space"],
        benchmark=c["benchmark"], datasets=list(c["datasets"]), search_metric=c["search_metric"],
        metric=c["metric"], seeds=seed_list, budget_queries=c["budget_queries"],
        budget_seconds=budget_s, algorithms=algorithms, modes=mode_list,
        n_candidates=c["n_candidates"], proxy_init_seed=c["proxy_init_seed"], data=data,
        device=str(raw.get("device", "cpu")), bootstrap=c["bootstrap"], quick=quick,
    )


def _algorithm(name: str, a: Mapping[str, Any]) -> Algorithm:
    if a["backend"] not in BACKENDS:
        raise StudyConfigError(f"[algorithm.{name}] backend must be one of {', '.join(BACKENDS)}")
    if a["proposals"] not in ("base", "uniform"):
        raise StudyConfigError(f"[algorithm.{name}] proposals must be 'base' or 'uniform'")
    if a["backend"] == "optuna":
        if not a["sampler"]:
            raise StudyConfigError(f"[algorithm.{name}] an optuna algorithm needs sampler = "
                                   f"\"RandomSampler\" / \"TPESampler\" / ...")
        sampler_class(a["sampler"])
    else:
        from zcnas.integration.nni import STRATEGIES

        if a["strategy"] not in STRATEGIES:
            raise StudyConfigError(f"[algorithm.{name}] an nni algorithm needs strategy = one "
                                   f"of {', '.join(STRATEGIES)}")
    return Algorithm(name, a["label"] or name, a["backend"], a["sampler"], a["strategy"],
                     dict(a["kwargs"]), a["proposals"])


# --- running ------------------------------------------------------------------------------------
@dataclass
class CompareResult:
    """What :func:`compare` did: per-cell status and the written files."""

    config: CompareConfig
    ran: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # study -> reason
    files: dict[str, Path] = field(default_factory=dict)
    summary: list[dict[str, Any]] = field(default_factory=list)


def _nni_missing() -> str | None:
    from zcnas.integration.nni import NNINotInstalledError
    from zcnas.integration.nni import require_nni

    try:
        require_nni()
    except NNINotInstalledError as exc:
        return str(exc)
    return None


def _finished(rdb: Any, name: str) -> tuple[optuna.Study | None, int]:
    try:
        study = optuna.load_study(study_name=name, storage=rdb)
    except KeyError:
        return None, 0
    return study, trial_counts(study).finished


def _run_optuna(cfg: CompareConfig, cell: Cell) -> None:
    a, m = cell.algorithm, cell.mode
    study: dict[str, Any] = {
        "device": cfg.device,
        "study": {"name": cell.study_name, "storage": cfg.storage,
                  "n_trials": cfg.budget_queries, "seed": cell.seed},
        "space": {"name": cfg.space},
        "objective": {"kind": "benchmark", "benchmark": cfg.benchmark, "dataset": cell.dataset,
                      "search_metric": cfg.search_metric, "metric": cfg.metric},
        "sampler": {"name": a.sampler, "kwargs": dict(a.kwargs)},
    }
    if m.proxy:
        study["assist"] = {"mode": "preselect", "proxy": m.proxy,
                           "proxy_params": dict(m.proxy_params), "init_seed": cfg.proxy_init_seed,
                           "n_candidates": cfg.n_candidates, "proposals": a.proposals}
        study["data"] = {**cfg.data, "num_classes": NUM_CLASSES[cell.dataset]}
    run_study(study)


def _run_nni(cfg: CompareConfig, cell: Cell, rdb: Any) -> None:
    from zcnas.integration.nni import run_strategy

    m = cell.mode
    study, _ = _finished(rdb, cell.study_name)
    if study is not None:  # an interrupted run: NNI cannot continue it, so start it again
        _logger.info("%s: incomplete NNI run, starting it again", cell.study_name)
        optuna.delete_study(study_name=cell.study_name, storage=rdb)
    batch = None
    if m.proxy:
        batch = load_batch(cfg.data["source"], cfg.data["batch_size"], cfg.data["seed"],
                           NUM_CLASSES[cell.dataset])
    run_strategy(
        cfg.space, get_proxy(m.proxy, **m.proxy_params) if m.proxy else None,
        cell.algorithm.strategy or "", n_trials=cfg.budget_queries, batch=batch, seed=cell.seed,
        storage=cfg.storage, study_name=cell.study_name, strategy_kwargs=cell.algorithm.kwargs,
        benchmark=cfg.benchmark, dataset=cell.dataset, metric=cfg.search_metric,
        assisted=bool(m.proxy), n_candidates=cfg.n_candidates, device=cfg.device,
        proxy_seed=cfg.proxy_init_seed,
    )


def _validate_targets(cfg: CompareConfig) -> None:
    space = get_space(cfg.space)
    bench = get_benchmark(cfg.benchmark)
    probe = space.key(space.arch_at(0))
    for ds in cfg.datasets:
        bench.query(probe, dataset=ds, metric=cfg.search_metric)
        bench.query(probe, dataset=ds, metric=cfg.metric)
    resolve_device(cfg.device)
    if any(m.proxy for m in cfg.modes):
        load_batch(cfg.data["source"], cfg.data["batch_size"], cfg.data["seed"])


def compare(path: str | os.PathLike[str] | Mapping[str, Any], quick: bool = False, *,
            seeds: int | None = None, storage: str | None = None,
            out: str | os.PathLike[str] | None = "zcnas_out/compare",
            quiet_libraries: bool = True, run: bool = True) -> CompareResult:
    """Run every unfinished cell of a compare file, then write the report into ``out``.

    Args:
        path: the compare file (or its parsed dict).
        quick: apply the file's ``[quick]`` overrides (a CI-sized run, studies ``<name>-quick-*``).
        seeds: run seeds 0..N-1 instead of the file's.
        storage: SQLAlchemy URL (default: the file's, else ``$ZCNAS_STORAGE``).
        out: report folder (None: run only).
        quiet_libraries: set Optuna's and NNI's loggers to WARNING.
        run: False writes the report from what is stored and runs nothing (unfinished cells
            are listed, not counted).

    Returns:
        :class:`CompareResult`; ``summary`` holds one row per dataset x algorithm x mode.

    Raises:
        StudyConfigError: a bad compare file (before anything is written).
        ZcnasError: a study of the same name holds another configuration.
    """
    cfg = load_compare(path, quick=quick, seeds=seeds, storage=storage)
    _validate_targets(cfg)
    result = CompareResult(cfg)
    needs_nni = any(a.backend == "nni" for a in cfg.algorithms)
    nni_reason = _nni_missing() if needs_nni else None  # imports NNI, which sets its log level
    if quiet_libraries:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        logging.getLogger("nni").setLevel(logging.WARNING)
    rdb = make_storage(cfg.storage, heartbeat_interval=None)
    ScoreCache(cfg.storage)  # creates the zcnas tables once, before any cell
    cells = cfg.cells()
    for i, cell in enumerate(cells, 1):
        if cell.algorithm.backend == "nni" and nni_reason:
            result.skipped[cell.study_name] = nni_reason
            continue
        if not run:
            continue
        sha = cfg.sha(cell)
        study, finished = _finished(rdb, cell.study_name)
        tag = study.user_attrs.get("zcnas_compare") if study is not None else None
        if tag and tag.get("sha") != sha:
            raise StudyConfigError(
                f"study {cell.study_name!r} in {redact(cfg.storage)} was run with another "
                f"configuration; change [compare] name to start a new comparison")
        if finished >= cfg.budget_queries and (tag or cell.algorithm.backend == "optuna"):
            result.skipped_done.append(cell.study_name)
            if tag is None:
                study.set_user_attr("zcnas_compare", _tag(cfg, cell, sha))  # type: ignore[union-attr]
            continue
        _logger.info("[%d/%d] %s", i, len(cells), cell.study_name)
        if cell.algorithm.backend == "optuna":
            _run_optuna(cfg, cell)
        else:
            _run_nni(cfg, cell, rdb)
        optuna.load_study(study_name=cell.study_name, storage=rdb).set_user_attr(
            "zcnas_compare", _tag(cfg, cell, sha))
        result.ran.append(cell.study_name)
    if out is not None:
        from zcnas._compare_report import write_report

        result.summary, result.files = write_report(cfg, rdb, result.skipped, Path(out))
    return result


def _tag(cfg: CompareConfig, cell: Cell, sha: str) -> dict[str, Any]:
    return {"compare": cfg.name, "sha": sha, "dataset": cell.dataset,
            "algorithm": cell.algorithm.name, "mode": cell.mode.name, "seed": cell.seed}
