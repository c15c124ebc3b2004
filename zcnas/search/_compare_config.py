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
from zcnas.search._features import is_free_member
from zcnas.search._run_config import sampler_class
from zcnas.spaces import DEFAULT_SPACE
from zcnas.storage import default_storage


BACKENDS = ("optuna", "nni", "zcnas")
ASSISTS = ("preselect", "warmup", "native")


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
    budget_queries: int | dict[str, Any] = 100
    engine: str = choices("study", "memory", default="study")
    proxy_num_classes: int | None = None
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
    modes: list[str] | None = None
    baseline: str | None = None
    pruner: str | None = None
    pruner_kwargs: dict[str, Any] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ModeSection:
    """``[mode.<name>]``: vanilla (no proxy) or assisted by a proxy / ensemble."""

    label: str | None = None
    proxy: str | None = None
    proxy_params: dict[str, Any] = field(default_factory=dict)
    assist: str = choices(*ASSISTS, default="preselect")
    members: list[str] | None = None
    member_params: dict[str, Any] = field(default_factory=dict)
    warmup: int = 1000
    warmup_top_k: int = 10
    n_candidates: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class QuickSection:
    """``[quick]``: CI-sized overrides of ``[compare]`` (and the batch size)."""

    seeds: int | list[int] | None = None
    budget_queries: int | dict[str, Any] | None = None
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
    modes: tuple[str, ...] | None = None
    baseline: str | None = None
    pruner: str | None = None
    pruner_kwargs: Mapping[str, Any] = field(default_factory=dict)
    fidelity: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mode:
    """``vanilla`` (no proxy) or assisted by ``proxy`` / ``members``: pre-selection (the proxy's
    best of ``n_candidates`` proposals), warm-up (the proxy's top ``warmup_top_k`` of a random
    pool of ``warmup`` enqueued first) or native (a zcnas sampler that uses the proxies itself)."""

    name: str
    label: str
    proxy: str | None = None
    proxy_params: Mapping[str, Any] = field(default_factory=dict)
    assist: str = "preselect"
    members: tuple[str, ...] | None = None
    member_params: Mapping[str, Any] = field(default_factory=dict)
    warmup: int = 1000
    warmup_top_k: int = 10
    n_candidates: int | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def assisted(self) -> bool:
        return bool(self.proxy or self.members)

    @property
    def proxies(self) -> list[str]:
        """The proxies this mode scores with (``members``, else ``[proxy]``)."""
        if self.members:
            return list(self.members)
        return [self.proxy] if self.proxy else []


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
    budget_queries: int | dict[str, int]
    budget_seconds: dict[str, float]
    algorithms: list[Algorithm]
    modes: list[Mode]
    n_candidates: int
    proxy_init_seed: int
    data: dict[str, Any]
    device: str
    bootstrap: int
    quick: bool = False
    engine: str = "study"
    proxy_num_classes: int | None = None
    mode_table: dict[str, Mode] = field(default_factory=dict)  # every [mode.*] defined

    def num_classes(self, dataset: str) -> int:
        """The classifier width of ``dataset`` (from the benchmark's dataset metadata)."""
        return get_benchmark(self.benchmark).dataset(dataset).num_classes

    def proxy_classes(self, dataset: str) -> int:
        """The classifier width the proxies see: ``proxy_num_classes`` if set (one score per
        architecture shared by every target), else the target dataset's."""
        return self.proxy_num_classes or self.num_classes(dataset)

    def queries(self, dataset: str) -> int:
        """The run length (benchmark queries per cell) on ``dataset``."""
        if isinstance(self.budget_queries, int):
            return self.budget_queries
        return int(self.budget_queries[dataset])

    def modes_of(self, algorithm: Algorithm) -> list[Mode]:
        """The modes run with ``algorithm`` (its own ``modes`` list, else ``[compare] modes``)."""
        if algorithm.modes is None:
            return list(self.modes)
        table = {m.name: m for m in self.modes} | self.mode_table
        return [table[n] for n in algorithm.modes]

    def cells(self) -> list[Cell]:
        out = []
        for ds in self.datasets:  # seed-major: an interrupted run has balanced seeds
            for s in self.seeds:
                for a in self.algorithms:
                    for m in self.modes_of(a):
                        out.append(Cell(a, m, s, ds, f"{self.name}-{ds}-{a.name}-{m.name}-seed{s}"))
        return out

    def sha(self, cell: Cell) -> str:
        """Hash of everything that determines a cell's trials (not storage, budget or seeds)."""
        what: dict[str, Any] = {
            "space": self.space, "benchmark": self.benchmark, "dataset": cell.dataset,
            "search_metric": self.search_metric, "algorithm": _changed(cell.algorithm),
            "mode": _changed(cell.mode), "seed": cell.seed,
        }
        if cell.mode.assisted:
            what.update(n_candidates=self.n_candidates, proxy_init_seed=self.proxy_init_seed,
                        data=self.data)
            if self.proxy_num_classes is not None:
                what["proxy_num_classes"] = self.proxy_num_classes
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()
                              ).hexdigest()[:16]


#: fields added after the first release: left out of a cell's hash while at their defaults, so
#: the cells of older compare files keep their hash (and their stored studies)
_NEW_FIELDS: dict[str, Any] = {"modes": None, "baseline": None, "pruner": None, "pruner_kwargs": {},
               "fidelity": {}, "assist": "preselect", "members": None, "member_params": {},
               "warmup": 1000, "warmup_top_k": 10, "n_candidates": None, "kwargs": {}}


def _changed(obj: Any) -> dict[str, Any]:
    out = dict(obj.__dict__)
    if isinstance(obj, Algorithm):  # which modes run and what they are compared with do not
        out.pop("modes", None)       # change a cell's trials
        out.pop("baseline", None)
    for k, default in _NEW_FIELDS.items():
        if k in out and out[k] == default and not (k == "kwargs" and isinstance(obj, Algorithm)):
            out.pop(k)
    return out


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
    table = {n: _mode(n, m) for n, m in modes.items()}
    mode_list = [table[n] for n in pick_m]
    for a in algorithms:
        for n in a.modes or ():
            if n not in table:
                raise StudyConfigError(f"{where}[algorithm.{a.name}] mode {n!r} has no "
                                       f"[mode.{n}] table; defined: {', '.join(table)}")
        _check_modes(a, [table[n] for n in (a.modes or pick_m)], where)
        if a.baseline is not None and a.baseline not in {x.name for x in algorithms}:
            raise StudyConfigError(f"{where}[algorithm.{a.name}] baseline {a.baseline!r} is not "
                                   f"one of the compared algorithms")
    for m in table.values():
        for p in m.proxies:
            if not is_free_member(p):
                resolve(p, **(m.member_params.get(p, {}) if m.members else m.proxy_params))
        if m.assist == "warmup" and not 1 <= m.warmup_top_k <= m.warmup:
            raise StudyConfigError(f"{where}[mode.{m.name}] needs 1 <= warmup_top_k <= warmup")
    budgets = c["budget_queries"]
    if isinstance(budgets, dict):
        missing = [ds for ds in c["datasets"] if ds not in budgets]
        if missing or not all(isinstance(v, int) and not isinstance(v, bool)
                              for v in budgets.values()):
            raise StudyConfigError(f"{where}[compare] budget_queries maps every dataset "
                                   f"({', '.join(c['datasets'])}) to a number of queries")
        budgets = {str(k): int(v) for k, v in budgets.items()}
    for k in ("n_candidates", "bootstrap"):
        if c[k] < 1:
            raise StudyConfigError(f"{where}[compare] {k} must be at least 1, got {c[k]}")
    if min(budgets.values()) < 1 if isinstance(budgets, dict) else budgets < 1:
        raise StudyConfigError(f"{where}[compare] budget_queries must be at least 1")
    if c["proxy_num_classes"] is not None and c["proxy_num_classes"] < 1:
        raise StudyConfigError(f"{where}[compare] proxy_num_classes must be at least 1")
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
        metric=c["metric"], seeds=seed_list, budget_queries=budgets,
        budget_seconds=budget_s, algorithms=algorithms, modes=mode_list,
        n_candidates=c["n_candidates"], proxy_init_seed=c["proxy_init_seed"], data=data,
        device=device, bootstrap=c["bootstrap"], quick=quick, engine=c["engine"],
        proxy_num_classes=c["proxy_num_classes"], mode_table=table,
    )


def _mode(name: str, m: ModeSection) -> Mode:
    proxies = list(m.members or ([m.proxy] if m.proxy else []))
    kind = {"preselect": "-assisted", "warmup": " warm-start", "native": "-assisted (native)"}
    label = m.label or (f"{'+'.join(proxies)}{kind[m.assist]}" if proxies else name)
    return Mode(name, label, m.proxy, dict(m.proxy_params), m.assist,
                tuple(m.members) if m.members else None, dict(m.member_params), m.warmup,
                m.warmup_top_k, m.n_candidates, dict(m.kwargs))


def _check_modes(a: Algorithm, modes: list[Mode], where: str) -> None:
    """Which assist fits which backend and sampler (fails before anything is written)."""
    from zcnas.search._zcnas_samplers import NEEDS_PROXY
    from zcnas.search._zcnas_samplers import check_kwargs

    head = f"{where}[algorithm.{a.name}]"
    for m in modes:
        if a.backend == "zcnas":
            extra = {**m.kwargs, **({"n_candidates": 1} if m.n_candidates else {})} \
                if m.assisted and m.assist == "native" else {}
            check_kwargs(a.sampler or "", {**a.kwargs, **extra}, f"{head} ")
        if not m.assisted:
            if a.backend == "zcnas" and a.sampler in NEEDS_PROXY:
                raise StudyConfigError(f"{head} {a.sampler} needs a proxy; mode {m.name!r} has "
                                       f"none (drop it from the modes; set baseline = "
                                       f"\"<algorithm>\" to compare with a vanilla search)")
            continue
        if a.backend == "nni" and (m.assist != "preselect" or m.members):
            raise StudyConfigError(f"{head} NNI strategies take a single proxy in assist = "
                                   f"\"preselect\" (G-RS / G-REA / G-RL); mode {m.name!r} asks "
                                   f"for {m.assist!r}")
        if m.assist == "native" and a.backend != "zcnas":
            raise StudyConfigError(f"{head} assist = \"native\" (mode {m.name!r}) needs a zcnas "
                                   f"sampler (backend = \"zcnas\"); use \"preselect\" or "
                                   f"\"warmup\" with {a.sampler or a.strategy}")
        if a.backend == "zcnas" and a.sampler in NEEDS_PROXY and m.assist != "native":
            raise StudyConfigError(f"{head} {a.sampler} uses its proxies itself: mode "
                                   f"{m.name!r} must have assist = \"native\"")
        if m.assist != "native" and m.members and len(m.members) > 1:
            raise StudyConfigError(f"{head} mode {m.name!r}: pre-selection and warm-up use one "
                                   f"proxy (proxy = \"...\"); members are for native samplers")
    if (a.pruner or a.fidelity) and a.backend != "optuna":
        raise StudyConfigError(f"{head} pruner / fidelity need backend = \"optuna\"")


def _algorithm(name: str, a: AlgorithmSection, where: str) -> Algorithm:
    if a.backend == "optuna":
        if not a.sampler:
            raise StudyConfigError(f"{where}[algorithm.{name}] an optuna algorithm needs sampler "
                                   f"= \"RandomSampler\" / \"TPESampler\" / ...")
        sampler_class(a.sampler, where)
        if a.pruner is not None:
            pruner_class(a.pruner, where)
    elif a.backend == "zcnas":
        from zcnas.search._zcnas_samplers import ZCNAS_SAMPLERS

        if a.sampler not in ZCNAS_SAMPLERS:
            raise StudyConfigError(f"{where}[algorithm.{name}] a zcnas algorithm needs sampler "
                                   f"= one of {', '.join(ZCNAS_SAMPLERS)}")
    else:
        from zcnas.search.nni import STRATEGIES

        if a.strategy not in STRATEGIES:
            raise StudyConfigError(f"{where}[algorithm.{name}] an nni algorithm needs strategy "
                                   f"= one of {', '.join(STRATEGIES)}")
    unknown = set(a.fidelity) - {"low_metric", "high_metric", "low_step", "high_step"}
    if unknown:
        raise StudyConfigError(f"{where}[algorithm.{name}] fidelity has unknown keys "
                               f"{sorted(unknown)}; allowed: low_metric, high_metric, low_step, "
                               f"high_step")
    if a.fidelity and a.pruner is None:
        raise StudyConfigError(f"{where}[algorithm.{name}] fidelity needs a pruner, e.g. pruner "
                               f"= \"HyperbandPruner\"")
    return Algorithm(name, a.label or name, a.backend, a.sampler, a.strategy, dict(a.kwargs),
                     a.proposals, tuple(a.modes) if a.modes is not None else None, a.baseline,
                     a.pruner, dict(a.pruner_kwargs), dict(a.fidelity))


def pruner_class(name: str, where: str = "") -> type:
    """An ``optuna.pruners`` class by name."""
    import optuna

    names = [n for n in optuna.pruners.__all__ if n.endswith("Pruner") and n != "BasePruner"]
    if name not in names:
        raise StudyConfigError(f"{where}unknown pruner {name!r}; choose one of "
                               f"{', '.join(sorted(names))}")
    return getattr(optuna.pruners, name)
