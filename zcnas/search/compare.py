"""Proxy-assisted vs vanilla NAS on a benchmark: ``zcnas compare STUDY.toml``.

A compare file declares algorithms x modes x seeds x target datasets and a budget. Every cell
(algorithm, mode, seed, dataset) is one stored search:

* Optuna algorithms (random search, TPE) run through :func:`zcnas.studies.run_study`; an
  assisted mode wraps the sampler in :class:`~zcnas.search._prescreen.ProxyPrescreenSampler`
  (the proxy's best of ``n_candidates`` proposals is queried).
* NNI algorithms (regularized evolution, policy-based RL) run through
  :func:`zcnas.search.nni.run_strategy`; an assisted mode uses the G-REA / G-RL strategies
  of :mod:`zcnas.search._nni_assisted`. Without NNI they are reported as skipped.
* zcnas samplers (``backend = "zcnas"``: regularized evolution and REINFORCE as NB201 ran them,
  GP-BO with proxy features, an online-refitted ensemble, FreeREA, RoBoT) and every cell of a
  file with ``engine = "memory"`` or a warm-up / native mode run in memory and are stored whole
  (:mod:`zcnas.search._compare_run`).

The search sees only ``search_metric`` (NB201 protocol: ``valid_12ep``); the report gives the
``metric`` (200-epoch test accuracy) of the incumbent. Proxy scores are cached in SQL and the
proxy's weight-initialisation seed is fixed (``proxy_init_seed``), so all cells share them and a
rerun computes none. Rerunning skips finished cells; an interrupted NNI cell is run again from
its start (proxy scores come from the cache).

Budgets: ``budget_queries`` benchmark queries per cell (the run length; one number, or one per
dataset) and optionally
``budget_seconds`` (per dataset) of simulated time, read off the curves: the training time of
each query (benchmark cost model) plus the proxy's measured compute seconds of the architectures
it scored for that run (each charged once per run, whether or not another cell had already
cached it: the honest charge), and the papers' convention that does not charge the proxy.

Example::

    from zcnas.search.compare import compare
    result = compare("studies/gradsign_vs_vanilla_nb201.toml", quick=True, out="zcnas_out/cmp")
    print(result.files["summary.md"].read_text())
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import logging
import os
from pathlib import Path
from typing import Any

import optuna
from tqdm.auto import tqdm

from zcnas.benchmarks import get_benchmark
from zcnas.data import load_batch
from zcnas.scoring import resolve
from zcnas.scoring import resolve_device
from zcnas.search._compare_config import Algorithm
from zcnas.search._compare_config import Cell
from zcnas.search._compare_config import CompareConfig
from zcnas.search._compare_config import Mode
from zcnas.search._compare_config import load_compare
from zcnas.search._compare_report import write_report
from zcnas.search._compare_run import CellRunner
from zcnas.search._config import StudyConfigError
from zcnas.search._objectives import probe_key
from zcnas.search._study import trial_counts
from zcnas.search.studies import run_study
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import make_storage
from zcnas.storage import redact


_logger = logging.getLogger(__name__)
__all__ = ["Algorithm", "Cell", "CompareConfig", "CompareResult", "Mode", "compare",
           "load_compare"]


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
    from zcnas.search.nni import NNINotInstalledError
    from zcnas.search.nni import require_nni

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
                  "n_trials": cfg.queries(cell.dataset), "seed": cell.seed},
        "space": {"name": cfg.space},
        "objective": {"kind": "benchmark", "benchmark": cfg.benchmark, "dataset": cell.dataset,
                      "search_metric": cfg.search_metric, "metric": cfg.metric},
        "sampler": {"name": a.sampler, "kwargs": dict(a.kwargs)},
    }
    if m.proxy:
        study["assist"] = {"mode": "preselect", "proxy": m.proxy,
                           "proxy_params": dict(m.proxy_params), "init_seed": cfg.proxy_init_seed,
                           "n_candidates": cfg.n_candidates, "proposals": a.proposals}
        study["data"] = {**cfg.data, "num_classes": cfg.proxy_classes(cell.dataset)}
    run_study(study, progress=False)  # the cells bar is the progress


def _run_nni(cfg: CompareConfig, cell: Cell, rdb: Any) -> None:
    from zcnas.search.nni import run_strategy

    m = cell.mode
    study, _ = _finished(rdb, cell.study_name)
    if study is not None:  # an interrupted run: NNI cannot continue it, so start it again
        _logger.info("%s: incomplete NNI run, starting it again", cell.study_name)
        optuna.delete_study(study_name=cell.study_name, storage=rdb)
    batch = None
    if m.proxy:
        batch = load_batch(cfg.data["source"], cfg.data["batch_size"], cfg.data["seed"],
                           cfg.proxy_classes(cell.dataset))
    run_strategy(
        cfg.space, resolve(m.proxy, **m.proxy_params) if m.proxy else None,
        cell.algorithm.strategy or "", n_trials=cfg.queries(cell.dataset), batch=batch, seed=cell.seed,
        storage=cfg.storage, study_name=cell.study_name, strategy_kwargs=cell.algorithm.kwargs,
        benchmark=cfg.benchmark, dataset=cell.dataset, metric=cfg.search_metric,
        assisted=bool(m.proxy), n_candidates=cfg.n_candidates, device=cfg.device,
        proxy_seed=cfg.proxy_init_seed, progress=False,
    )


def _validate_targets(cfg: CompareConfig) -> None:
    space = get_space(cfg.space)
    bench = get_benchmark(cfg.benchmark)
    probe = probe_key(space, bench)
    for ds in cfg.datasets:
        bench.validate(probe, dataset=ds, metric=cfg.search_metric)
        bench.validate(probe, dataset=ds, metric=cfg.metric)
    resolve_device(cfg.device)
    if any(m.assisted for m in cfg.mode_table.values()):
        load_batch(cfg.data["source"], cfg.data["batch_size"], cfg.data["seed"])


def compare(path: str | os.PathLike[str] | Mapping[str, Any], quick: bool = False, *,
            seeds: int | None = None, storage: str | None = None,
            out: str | os.PathLike[str] | None = "zcnas_out/compare",
            quiet_libraries: bool = True, run: bool = True,
            progress: bool = True) -> CompareResult:
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
        progress: a bar over the cells (each Optuna cell also shows its trials).

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
    runner: CellRunner | None = None
    for i, cell in enumerate(tqdm(cells, desc=cfg.name, unit="run", disable=not progress,
                                  dynamic_ncols=True), 1):
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
        in_memory = in_memory_cell(cfg, cell)
        if finished >= cfg.queries(cell.dataset) and (
                tag or (cell.algorithm.backend == "optuna" and not in_memory)):
            result.skipped_done.append(cell.study_name)
            if tag is None:
                study.set_user_attr("zcnas_compare", _tag(cfg, cell, sha))  # type: ignore[union-attr]
            continue
        _logger.info("[%d/%d] %s", i, len(cells), cell.study_name)
        if in_memory:
            # fitting FLOPs builds ~150 networks: worth it for a grid, not for a handful of runs
            runner = runner or CellRunner(cfg, fit_flops=sum(
                cfg.queries(c.dataset) for c in cells if in_memory_cell(cfg, c)) >= 2000)
            runner.run(cell, rdb)
        elif cell.algorithm.backend == "optuna":
            _run_optuna(cfg, cell)
        else:
            _run_nni(cfg, cell, rdb)
        optuna.load_study(study_name=cell.study_name, storage=rdb).set_user_attr(
            "zcnas_compare", _tag(cfg, cell, sha))
        result.ran.append(cell.study_name)
    if out is not None:
        result.summary, result.files = write_report(cfg, rdb, result.skipped, Path(out))
    return result


def in_memory_cell(cfg: CompareConfig, cell: Cell) -> bool:
    """Whether ``cell`` runs through :class:`~zcnas.search._compare_run.CellRunner`."""
    if cell.algorithm.backend == "nni":
        return False
    return (cfg.engine == "memory" or cell.algorithm.backend == "zcnas"
            or bool(cell.algorithm.fidelity)
            or (cell.mode.assisted and cell.mode.assist in ("warmup", "native")))


def _tag(cfg: CompareConfig, cell: Cell, sha: str) -> dict[str, Any]:
    return {"compare": cfg.name, "sha": sha, "dataset": cell.dataset,
            "algorithm": cell.algorithm.name, "mode": cell.mode.name, "seed": cell.seed}
