"""The model of a compare file (``zcnas compare``): typed sections, validated in one pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import hashlib
import json
import os
from typing import Any

from zcnas.benchmarks import DEFAULT_BENCHMARK
from zcnas.benchmarks import get_benchmark
from zcnas.scoring import resolve
from zcnas.search._config import BatchSection
from zcnas.search._config import StudyConfigError
from zcnas.search._config import as_dict
from zcnas.search._config import check_sections
from zcnas.search._config import choices
from zcnas.search._config import parse_section
from zcnas.search._config import source
from zcnas.search._run_config import sampler_class
from zcnas.spaces import DEFAULT_SPACE
from zcnas.storage import default_storage


BACKENDS = ("optuna", "nni")


@dataclass(frozen=True, kw_only=True)
class CompareSection:
    """``[compare]``: the grid (datasets x seeds x algorithms x modes) and its budgets."""

    name: str
    storage: str | None = None
    space: str = DEFAULT_SPACE
    benchmark: str = DEFAULT_BENCHMARK
    datasets: list[str] = field(default_factory=lambda: ["cifar10"])
    search_metric: str = "valid_12ep"
    metric: str = "test"
    seeds: int | list[int] = 20
    budget_queries: int = 100
    budget_seconds: dict[str, Any] = field(default_factory=dict)
    algorithms: list[str] | None = None
    modes: list[str] | None = None
    n_candidates: int = 10
    proxy_init_seed: int = 0
    bootstrap: int = 10_000


@dataclass(frozen=True, kw_only=True)
class AlgorithmSection:
    """``[algorithm.<name>]``: an Optuna sampler or an NNI strategy with its options."""

    label: str | None = None
    backend: str = choices(*BACKENDS)
    sampler: str | None = None
    strategy: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    proposals: str = choices("base", "uniform", default="base")


@dataclass(frozen=True, kw_only=True)
class ModeSection:
    """``[mode.<name>]``: vanilla (no proxy) or assisted by a proxy / ensemble."""

    label: str | None = None
    proxy: str | None = None
    proxy_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class QuickSection:
    """``[quick]``: CI-sized overrides of ``[compare]`` (and the batch size)."""

    seeds: int | list[int] | None = None
    budget_queries: int | None = None
    budget_seconds: dict[str, Any] | None = None
    datasets: list[str] | None = None
    algorithms: list[str] | None = None
    modes: list[str] | None = None
    n_candidates: int | None = None
    batch_size: int | None = None


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

    def num_classes(self, dataset: str) -> int:
        """The classifier width of ``dataset`` (from the benchmark's dataset metadata)."""
        return get_benchmark(self.benchmark).dataset(dataset).num_classes

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
    raw, where = source(path, "compare file", "see studies/gradsign_vs_vanilla_nb201.toml")
    check_sections(raw, ["compare", "data", "algorithm", "mode", "quick"], where=where,
                   top_level=["device"])
    c = as_dict(parse_section(CompareSection, raw.get("compare", {}), "compare", where=where))
    data = as_dict(parse_section(BatchSection, raw.get("data", {}), "data", where=where))
    q = parse_section(QuickSection, raw.get("quick", {}), "quick", where=where)
    if quick:
        for k, v in as_dict(q).items():
            if v is not None:
                (data if k == "batch_size" else c)[k] = v
    if seeds is not None:
        if seeds < 1:
            raise StudyConfigError(f"--seeds must be at least 1, got {seeds}")
        c["seeds"] = seeds
    seed_list = list(range(c["seeds"])) if isinstance(c["seeds"], int) else list(c["seeds"])
    if not seed_list or len(set(seed_list)) != len(seed_list) or not all(
            isinstance(s, int) for s in seed_list):
        raise StudyConfigError(f"{where}[compare] seeds must be a count >= 1 or a list of "
                               f"distinct integers")
    algos = {n: parse_section(AlgorithmSection, a, f"algorithm.{n}", where=where)
             for n, a in raw.get("algorithm", {}).items()}
    modes = {n: parse_section(ModeSection, m, f"mode.{n}", where=where)
             for n, m in raw.get("mode", {}).items()}
    modes.setdefault("vanilla", ModeSection(label="vanilla"))
    pick_a = c["algorithms"] if c["algorithms"] is not None else list(algos)
    pick_m = c["modes"] if c["modes"] is not None else list(modes)
    for kind, picked, known in (("algorithm", pick_a, algos), ("mode", pick_m, modes)):
        if not picked:
            raise StudyConfigError(f"{where}[compare] lists no {kind}s")
        for n in picked:
            if n not in known:
                raise StudyConfigError(f"{where}[compare] {kind} {n!r} has no [{kind}.{n}] "
                                       f"table; defined: {', '.join(known) or 'none'}")
    algorithms = [_algorithm(n, algos[n], where) for n in pick_a]
    mode_list = [Mode(n, modes[n].label or (f"{modes[n].proxy}-assisted" if modes[n].proxy
                                            else n),
                      modes[n].proxy, dict(modes[n].proxy_params)) for n in pick_m]
    for m in mode_list:
        if m.proxy:
            resolve(m.proxy, **m.proxy_params)
    for k in ("budget_queries", "n_candidates", "bootstrap"):
        if c[k] < 1:
            raise StudyConfigError(f"{where}[compare] {k} must be at least 1, got {c[k]}")
    if data["batch_size"] < 1:
        raise StudyConfigError(f"{where}[data] batch_size must be at least 1")
    bench = get_benchmark(c["benchmark"])
    for ds in c["datasets"]:
        if ds not in bench.dataset_info:
            raise StudyConfigError(f"{where}[compare] unknown dataset {ds!r}; choose from "
                                   f"{', '.join(bench.dataset_info)}")
    budget_s = {str(k): float(v) for k, v in c["budget_seconds"].items()}
    if any(k not in bench.dataset_info or v <= 0 for k, v in budget_s.items()):
        raise StudyConfigError(f"{where}[compare] budget_seconds maps datasets "
                               f"({', '.join(bench.dataset_info)}) to positive seconds")
    device = raw.get("device", "cpu")
    if not isinstance(device, str):
        raise StudyConfigError(f"{where}device must be a string, got {device!r}")
    name = c["name"] + ("-quick" if quick else "")
    return CompareConfig(
        name=name, storage=storage or c["storage"] or default_storage(), space=c["space"],
        benchmark=c["benchmark"], datasets=list(c["datasets"]), search_metric=c["search_metric"],
        metric=c["metric"], seeds=seed_list, budget_queries=c["budget_queries"],
        budget_seconds=budget_s, algorithms=algorithms, modes=mode_list,
        n_candidates=c["n_candidates"], proxy_init_seed=c["proxy_init_seed"], data=data,
        device=device, bootstrap=c["bootstrap"], quick=quick,
    )


def _algorithm(name: str, a: AlgorithmSection, where: str) -> Algorithm:
    if a.backend == "optuna":
        if not a.sampler:
            raise StudyConfigError(f"{where}[algorithm.{name}] an optuna algorithm needs sampler "
                                   f"= \"RandomSampler\" / \"TPESampler\" / ...")
        sampler_class(a.sampler, where)
    else:
        from zcnas.search.nni import STRATEGIES

        if a.strategy not in STRATEGIES:
            raise StudyConfigError(f"{where}[algorithm.{name}] an nni algorithm needs strategy "
                                   f"= one of {', '.join(STRATEGIES)}")
    return Algorithm(name, a.label or name, a.backend, a.sampler, a.strategy, dict(a.kwargs),
                     a.proposals)
