"""The model of a study file (``zcnas run``): typed sections, validated in one pass."""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import hashlib
import inspect
import json
import os
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from zcnas.search._config import DataSection
from zcnas.search._config import StudyConfigError
from zcnas.search._config import as_dict
from zcnas.search._config import check_sections
from zcnas.search._config import choices
from zcnas.search._config import hint
from zcnas.search._config import parse_section
from zcnas.search._config import source
from zcnas.spaces import DEFAULT_SPACE
from zcnas.storage import redact


@dataclass(frozen=True, kw_only=True)
class StudySection:
    """``[study]``: name, storage, size and seeds of the run, and its heartbeat settings."""

    name: str
    storage: str | None = None
    n_trials: int
    seed: int | None = None
    seeds: list[int] | None = None
    heartbeat_interval: int = 10
    grace_period: int | None = None
    max_retry: int = 3


@dataclass(frozen=True, kw_only=True)
class SpaceSection:
    """``[space]``: a registered search space and its constructor parameters."""

    name: str = DEFAULT_SPACE
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ObjectiveSection:
    """``[objective]``: a proxy score (``kind = "proxy"``) or a benchmark lookup."""

    kind: str = choices("proxy", "benchmark")
    proxy: str | None = None
    proxy_params: dict[str, Any] = field(default_factory=dict)
    init_seed: int = 0
    objectives: list[str] = field(default_factory=lambda: ["proxy"])
    benchmark: str | None = None
    benchmark_params: dict[str, Any] = field(default_factory=dict)
    dataset: str = "cifar10"
    metric: str = "test"
    search_metric: str | None = None
    cost_model: str = choices("auto", "none", default="auto")


@dataclass(frozen=True, kw_only=True)
class SamplerSection:
    """``[sampler]``: any ``optuna.samplers`` class by name, with its keyword arguments."""

    name: str = "TPESampler"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AssistSection:
    """``[assist]``: how a proxy pre-screens the sampler's candidates (or warms it up)."""

    mode: str = choices("none", "preselect", "mutation", default="none")
    proxy: str | None = None
    proxy_params: dict[str, Any] = field(default_factory=dict)
    init_seed: int = 0
    n_candidates: int = 10
    random_prob: float = 0.0
    proposals: str = choices("base", "uniform", default="base")
    population: int = 20
    tournament: int = 5
    warmup: int = 0
    warmup_top_k: int = 10


# keys that do not change what a study computes (may differ between reruns)
RUN_ONLY = {("study", "storage"), ("study", "n_trials"), ("study", "heartbeat_interval"),
            ("study", "grace_period"), ("study", "max_retry")}


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """A validated study file. ``as_dict()`` is what is stored with each study."""

    device: str = "cpu"
    study: StudySection
    space: SpaceSection = field(default_factory=SpaceSection)
    objective: ObjectiveSection
    sampler: SamplerSection = field(default_factory=SamplerSection)
    assist: AssistSection = field(default_factory=AssistSection)
    data: DataSection = field(default_factory=DataSection)

    SECTIONS = {"study": StudySection, "space": SpaceSection, "objective": ObjectiveSection,
                "sampler": SamplerSection, "assist": AssistSection, "data": DataSection}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device}
        for name in self.SECTIONS:
            out[name] = json.loads(json.dumps(as_dict(getattr(self, name))))
        return out

    def replace(self, section: str, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied to ``[section]``."""
        return dataclasses.replace(self, **{section: dataclasses.replace(
            getattr(self, section), **changes)})

    @property
    def seeds(self) -> list[int]:
        """One study per seed: ``seeds``, or ``[seed]`` (default 0)."""
        if self.study.seeds is not None:
            return list(self.study.seeds)
        return [self.study.seed if self.study.seed is not None else 0]

    @property
    def study_names(self) -> list[str]:
        """``name``, or ``name-seed<N>`` per entry of ``seeds``."""
        if self.study.seeds is None:
            return [self.study.name]
        return [f"{self.study.name}-seed{s}" for s in self.study.seeds]

    def sha(self, seed: int | None = None) -> str:
        """Hash of everything that determines one study's trials: not storage, n_trials,
        heartbeat or device, and of the seeds only this study's ``seed`` (so seeds can be
        added later)."""
        cfg = self.as_dict()
        pruned = {s: {k: v for k, v in sec.items() if (s, k) not in RUN_ONLY}
                  for s, sec in cfg.items() if isinstance(sec, Mapping)}
        pruned["study"].pop("seeds", None)
        pruned["study"]["seed"] = seed
        return hashlib.sha256(json.dumps(pruned, sort_keys=True).encode()).hexdigest()[:16]

    def public(self) -> dict[str, Any]:
        """:meth:`as_dict` with the storage URL's password hidden (what is stored)."""
        out = self.as_dict()
        if out["study"].get("storage"):
            out["study"]["storage"] = redact(out["study"]["storage"])
        return out


def sampler_names() -> list[str]:
    """Concrete sampler classes of ``optuna.samplers``, by name."""
    out = []
    for name in optuna.samplers.__all__:
        obj = getattr(optuna.samplers, name, None)
        if inspect.isclass(obj) and issubclass(obj, BaseSampler) and not inspect.isabstract(obj) \
                and name not in ("BaseSampler", "BaseGASampler"):
            out.append(name)
    return sorted(out)


def sampler_class(name: str, where: str = "") -> type[BaseSampler]:
    names = sampler_names()
    if name not in names:
        raise StudyConfigError(f"{where}[sampler] unknown name {name!r}: {hint(name, names)}"
                               f"choose one of {', '.join(names)}")
    return getattr(optuna.samplers, name)


def sampler_params(cls: type[BaseSampler]) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def resume_seed(seed: int, n_existing: int) -> int:
    """The seed of a run that resumes a study holding ``n_existing`` trials: ``seed`` itself
    for a new study (so an uninterrupted run reproduces exactly), else a deterministic
    function of both, so a resumed run does not replay the sequence of the first run (its
    first proposals would be the architectures already evaluated)."""
    if n_existing <= 0:
        return int(seed)
    digest = hashlib.sha256(f"zcnas-resume:{seed}:{n_existing}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1)


def make_sampler(cfg: RunConfig, seed: int, n_existing: int = 0) -> BaseSampler:
    """The ``[sampler]`` class with its kwargs (``seed`` filled from the study seed if it takes
    one). Resuming a study that holds ``n_existing`` trials reseeds it with
    :func:`resume_seed` (of the kwargs' own ``seed`` if given)."""
    cls = sampler_class(cfg.sampler.name)
    kwargs = dict(cfg.sampler.kwargs)
    if "seed" in sampler_params(cls):
        base = kwargs.get("seed", seed)
        if base is not None:
            kwargs["seed"] = resume_seed(int(base), n_existing)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise StudyConfigError(f"[sampler] cannot create {cfg.sampler.name}({kwargs}): "
                               f"{exc}") from None


def parse_run_config(raw: Mapping[str, Any], where: str = "") -> RunConfig:
    """Check a parsed study file against the model; ``StudyConfigError`` names the file
    (``where``), the section and the key."""
    check_sections(raw, list(RunConfig.SECTIONS), where=where, top_level=["device"])
    device = raw.get("device", "cpu")
    if not isinstance(device, str):
        raise StudyConfigError(f"{where}device must be a string, got {device!r}")
    sections: dict[str, Any] = {name: parse_section(cls, raw.get(name, {}), name, where=where)
                                for name, cls in RunConfig.SECTIONS.items()}
    cfg = RunConfig(device=device, **sections)
    _check_rules(cfg, where)
    return cfg


def load_run_config(path_or_config: str | os.PathLike[str] | Mapping[str, Any] | RunConfig
                    ) -> RunConfig:
    """Read (if a path) and validate a study file."""
    if isinstance(path_or_config, RunConfig):
        return path_or_config
    raw, where = source(path_or_config, "study file", "pass a .toml file (see studies/)")
    return parse_run_config(raw, where)


def _check_rules(cfg: RunConfig, where: str) -> None:
    st, obj, assist, smp = cfg.study, cfg.objective, cfg.assist, cfg.sampler

    def fail(message: str) -> None:
        raise StudyConfigError(f"{where}{message}")

    if st.n_trials < 1:
        fail(f"[study] n_trials must be at least 1, got {st.n_trials}")
    if st.seed is not None and st.seeds is not None:
        fail("[study] give either seed or seeds, not both")
    if st.seeds is not None and (not st.seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in st.seeds)
            or len(set(st.seeds)) != len(st.seeds)):
        fail("[study] seeds must be a non-empty list of distinct integers")
    if obj.kind == "proxy":
        if not obj.proxy:
            fail("[objective] kind = \"proxy\" needs proxy = \"<name>\" (`zcnas proxies` lists "
                 "them)")
        if obj.search_metric is not None:
            fail("[objective] search_metric is for kind = \"benchmark\"; a proxy study reports "
                 "benchmark/dataset/metric only as ground truth")
        if not obj.objectives or obj.objectives[0] != "proxy":
            fail("[objective] objectives must start with \"proxy\", e.g. [\"proxy\", \"params\"]")
    else:
        if not obj.benchmark:
            fail("[objective] kind = \"benchmark\" needs benchmark = \"<name>\" (`zcnas "
                 "benchmarks` lists them)")
        if obj.proxy is not None:
            fail("[objective] proxy is for kind = \"proxy\"; a proxy that assists a benchmark "
                 "search goes in [assist]")
        if obj.objectives != ["proxy"]:
            fail("[objective] objectives is for kind = \"proxy\"")
    uses_assist = assist.mode != "none" or assist.warmup > 0
    if uses_assist and not assist.proxy:
        fail("[assist] mode/warmup need proxy = \"<name>\"")
    if assist.n_candidates < 1:
        fail("[assist] n_candidates must be >= 1")
    if not 0.0 <= assist.random_prob <= 1.0:
        fail("[assist] random_prob must be within [0, 1]")
    if assist.warmup < 0 or (assist.warmup and not 1 <= assist.warmup_top_k <= assist.warmup):
        fail("[assist] needs 0 <= warmup and 1 <= warmup_top_k <= warmup")
    if cfg.data.batch_size < 1:
        fail("[data] batch_size must be >= 1")
    cls = sampler_class(smp.name, where)
    allowed = sampler_params(cls)
    for key in smp.kwargs:
        if key not in allowed:
            fail(f"[sampler] {smp.name} has no argument {key!r}: {hint(key, allowed)}valid: "
                 f"{', '.join(allowed)}")
