"""Study files: a TOML file declares a whole search; :func:`run_study` runs it (resumably).

Example (``studies/smoke.toml``)::

    device = "cpu"

    [study]
    name = "smoke"
    storage = "sqlite:///zcnas.db"   # any SQLAlchemy URL; default $ZCNAS_STORAGE
    n_trials = 6                     # total finished trials the study ends with
    seed = 0                         # or seeds = [0, 1, 2]: one study per seed, "<name>-seed<N>"

    [space]
    name = "nb201"

    [objective]
    kind = "proxy"                   # or "benchmark"
    proxy = "params"

    [sampler]
    name = "TPESampler"              # any optuna.samplers class
    kwargs = { n_startup_trials = 3 }

    [data]
    source = "synthetic"
    batch_size = 8

Every key is checked before anything is written: an unknown section, key, sampler or sampler
argument is a one-line error that names the allowed ones. Rerunning the same file continues the
same study(ies) until ``n_trials`` trials are finished; trials of killed workers are failed
(heartbeat) and retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import difflib
import hashlib
import inspect
import json
import logging
import os
from pathlib import Path
import socket
import sys
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from sqlalchemy import select

from zcnas._report import report
from zcnas.benchmarks import get_benchmark
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.evaluate import resolve_device
from zcnas.exceptions import DataError
from zcnas.exceptions import ZcnasError
from zcnas.integration._objectives import BenchmarkObjective
from zcnas.integration._objectives import ProxyObjective
from zcnas.integration._prescreen import ProxyPrescreenSampler
from zcnas.integration._prescreen import warmup
from zcnas.integration._storage import StudyLock
from zcnas.integration._storage import create_study
from zcnas.integration._storage import make_storage
from zcnas.integration._storage import optimize_exact
from zcnas.integration._storage import trial_counts
from zcnas.proxies import get_proxy
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import default_storage
from zcnas.storage import redact
from zcnas.storage._models import RunModel
from zcnas.storage._models import _utcnow
from zcnas.version import __version__


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


_logger = logging.getLogger(__name__)
__all__ = [
    "SCHEMA", "StudyConfigError", "StudyResult", "config_sha", "load_config", "make_sampler",
    "public_config", "report", "run_study", "runs", "sampler_names", "study_names", "validate",
]


class StudyConfigError(ZcnasError):
    """A study file that does not validate."""


# --- schema -------------------------------------------------------------------------------------
# key -> (type(s), default); a default of ... means required.
_ANY_DICT = dict
SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "study": {
        "name": (str, ...), "storage": (str, None), "n_trials": (int, ...), "seed": (int, None),
        "seeds": (list, None), "heartbeat_interval": (int, 10), "grace_period": (int, None),
        "max_retry": (int, 3),
    },
    "space": {"name": (str, "nb201"), "params": (_ANY_DICT, {})},
    "objective": {
        "kind": (str, ...), "proxy": (str, None), "proxy_params": (_ANY_DICT, {}),
        "init_seed": (int, 0), "objectives": (list, ["proxy"]), "benchmark": (str, None),
        "benchmark_params": (_ANY_DICT, {}), "dataset": (str, "cifar10"), "metric": (str, "test"),
        "search_metric": (str, None), "cost_model": (str, "auto"),
    },
    "sampler": {"name": (str, "TPESampler"), "kwargs": (_ANY_DICT, {})},
    "assist": {
        "mode": (str, "none"), "proxy": (str, None), "proxy_params": (_ANY_DICT, {}),
        "init_seed": (int, 0), "n_candidates": (int, 10), "random_prob": (float, 0.0),
        "proposals": (str, "base"), "population": (int, 20), "tournament": (int, 5),
        "warmup": (int, 0), "warmup_top_k": (int, 10),
    },
    "data": {
        "source": (str, "cifar10"), "batch_size": (int, 64), "seed": (int, 0),
        "num_classes": (int, None),
    },
}
TOP_LEVEL = {"device": (str, "cpu")}
CHOICES = {
    ("objective", "kind"): ("proxy", "benchmark"),
    ("objective", "cost_model"): ("auto", "none"),
    ("assist", "mode"): ("none", "preselect", "mutation"),
    ("assist", "proposals"): ("base", "uniform"),
}
# keys that do not change what a study computes (may differ between reruns)
_RUN_ONLY = {("study", "storage"), ("study", "n_trials"), ("study", "heartbeat_interval"),
             ("study", "grace_period"), ("study", "max_retry")}


def _hint(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "a table ({...})"}


def _type_ok(value: Any, typ: Any) -> bool:
    """``typ`` is a type or a tuple of types; a bool is never a number."""
    types = typ if isinstance(typ, tuple) else (typ,)
    if isinstance(value, bool):
        return bool in types
    return any(isinstance(value, (int, float) if t is float else t) for t in types)


def _type_name(typ: Any) -> str:
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in (typ if isinstance(typ, tuple)
                                                                  else (typ,)))


def check_section(section: str, given: Mapping[str, Any], keys: Mapping[str, tuple[Any, Any]],
                  choices: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """Validate one ``[section]`` of a study file against ``keys`` (name -> (type, default);
    default ``...`` = required): unknown keys, missing keys, wrong types and values outside
    ``choices`` raise ``StudyConfigError`` naming the fix. Returns the section with defaults."""
    for key in given:
        if key not in keys:
            raise StudyConfigError(f"unknown key {key!r} in [{section}]: {_hint(key, list(keys))}"
                                   f"allowed: {', '.join(keys)}")
    out: dict[str, Any] = {}
    for key, (typ, default) in keys.items():
        if key not in given:
            if default is ...:
                raise StudyConfigError(f"[{section}] needs {key!r}")
            out[key] = default
            continue
        value = given[key]
        if not _type_ok(value, typ):
            raise StudyConfigError(f"[{section}] {key} must be {_type_name(typ)}, got {value!r}")
        allowed = (choices or {}).get(key)
        if allowed and value not in allowed:
            raise StudyConfigError(f"[{section}] {key} = {value!r}: choose one of "
                                   f"{', '.join(map(str, allowed))}")
        out[key] = float(value) if typ is float else value
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


def sampler_class(name: str) -> type[BaseSampler]:
    names = sampler_names()
    if name not in names:
        raise StudyConfigError(
            f"[sampler] unknown name {name!r}: {_hint(name, names)}choose one of {', '.join(names)}"
        )
    return getattr(optuna.samplers, name)


def _sampler_params(cls: type[BaseSampler]) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def validate(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Check a parsed study file against the schema; return it with defaults filled in.

    Raises ``StudyConfigError`` with one line naming the offending key and the allowed ones.
    """
    cfg: dict[str, Any] = {}
    sections = sorted(SCHEMA) + sorted(TOP_LEVEL)
    for key, value in raw.items():
        if key in TOP_LEVEL:
            continue
        if key not in SCHEMA:
            raise StudyConfigError(f"unknown section or key {key!r} in study file: "
                                   f"{_hint(key, sections)}allowed: {', '.join(sections)}")
        if not isinstance(value, Mapping):
            raise StudyConfigError(f"[{key}] must be a table (section), got {value!r}")
    for key, (typ, default) in TOP_LEVEL.items():
        value = raw.get(key, default)
        if not _type_ok(value, typ):
            raise StudyConfigError(f"{key} must be {_TYPE_NAMES[typ]}, got {value!r}")
        cfg[key] = value
    for section, keys in SCHEMA.items():
        choices = {k: v for (sec, k), v in CHOICES.items() if sec == section}
        cfg[section] = check_section(section, dict(raw.get(section, {})), keys, choices)
    _check_rules(cfg)
    return cfg


def _check_rules(cfg: dict[str, Any]) -> None:
    st, obj, assist, smp = cfg["study"], cfg["objective"], cfg["assist"], cfg["sampler"]
    if st["n_trials"] < 0:
        raise StudyConfigError("[study] n_trials must be >= 0")
    if st["seed"] is not None and st["seeds"] is not None:
        raise StudyConfigError("[study] give either seed or seeds, not both")
    if st["seeds"] is not None and (not st["seeds"] or not all(
            _type_ok(s, int) for s in st["seeds"]) or len(set(st["seeds"])) != len(st["seeds"])):
        raise StudyConfigError("[study] seeds must be a non-empty list of distinct integers")
    if obj["kind"] == "proxy":
        if not obj["proxy"]:
            raise StudyConfigError("[objective] kind = \"proxy\" needs proxy = \"<name>\" "
                                   "(`zcnas proxies` lists them)")
        if obj["search_metric"] is not None:
            raise StudyConfigError("[objective] search_metric is for kind = \"benchmark\"; a proxy "
                                   "study reports benchmark/dataset/metric only as ground truth")
        if not obj["objectives"] or obj["objectives"][0] != "proxy":
            raise StudyConfigError("[objective] objectives must start with \"proxy\", e.g. "
                                   "[\"proxy\", \"params\"]")
    else:
        if not obj["benchmark"]:
            raise StudyConfigError("[objective] kind = \"benchmark\" needs benchmark = \"<name>\" "
                                   "(`zcnas benchmarks` lists them)")
        for key in ("proxy",):
            if obj[key] is not None:
                raise StudyConfigError(f"[objective] {key} is for kind = \"proxy\"; a proxy that "
                                       f"assists a benchmark search goes in [assist]")
        if obj["objectives"] != ["proxy"]:
            raise StudyConfigError("[objective] objectives is for kind = \"proxy\"")
    uses_assist = assist["mode"] != "none" or assist["warmup"] > 0
    if uses_assist and not assist["proxy"]:
        raise StudyConfigError("[assist] mode/warmup need proxy = \"<name>\"")
    if assist["n_candidates"] < 1:
        raise StudyConfigError("[assist] n_candidates must be >= 1")
    if not 0.0 <= assist["random_prob"] <= 1.0:
        raise StudyConfigError("[assist] random_prob must be within [0, 1]")
    pool, top_k = assist["warmup"], assist["warmup_top_k"]
    if pool < 0 or (pool and not 1 <= top_k <= pool):
        raise StudyConfigError("[assist] needs 0 <= warmup and 1 <= warmup_top_k <= warmup")
    if cfg["data"]["batch_size"] < 1:
        raise StudyConfigError("[data] batch_size must be >= 1")
    cls = sampler_class(smp["name"])
    allowed = _sampler_params(cls)
    for key in smp["kwargs"]:
        if key not in allowed:
            raise StudyConfigError(
                f"[sampler] {smp['name']} has no argument {key!r}: {_hint(key, allowed)}"
                f"valid: {', '.join(allowed)}"
            )


def load_config(path_or_config: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read (if a path) and :func:`validate` a study file."""
    if isinstance(path_or_config, Mapping):
        return validate(path_or_config)
    return validate(read_toml(path_or_config, "study file", "pass a .toml file (see studies/)"))


def read_toml(path: str | os.PathLike[str], what: str, hint: str) -> dict[str, Any]:
    """The parsed TOML file at ``path``: ``DataError`` ("<what> <path> not found; <hint>") if
    it is missing, ``StudyConfigError`` if it is not valid TOML."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} not found; {hint}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyConfigError(f"{path} is not valid TOML: {exc}") from None


# --- building (no storage writes) ---------------------------------------------------------------
@dataclass
class _Built:
    cfg: dict[str, Any]
    seeds: list[int]
    names: list[str]
    batch: Batch | None
    device: str
    directions: list[str] = field(default_factory=list)


def study_names(cfg: Mapping[str, Any]) -> list[str]:
    """The study name(s) a config runs: ``name``, or ``name-seed<N>`` per entry of ``seeds``."""
    st = cfg["study"]
    if st["seeds"] is None:
        return [st["name"]]
    return [f"{st['name']}-seed{s}" for s in st["seeds"]]


def _seeds(cfg: Mapping[str, Any]) -> list[int]:
    st = cfg["study"]
    if st["seeds"] is not None:
        return list(st["seeds"])
    return [st["seed"] if st["seed"] is not None else 0]


def make_sampler(cfg: Mapping[str, Any], seed: int) -> BaseSampler:
    """The ``[sampler]`` class with its kwargs (``seed`` filled from the study seed if it takes one)."""
    smp = cfg["sampler"]
    cls = sampler_class(smp["name"])
    kwargs = dict(smp["kwargs"])
    if "seed" in _sampler_params(cls) and "seed" not in kwargs:
        kwargs["seed"] = seed
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise StudyConfigError(f"[sampler] cannot create {smp['name']}({kwargs}): {exc}") from None


def _build(cfg: dict[str, Any]) -> _Built:
    """Resolve every name and load the data; raises before any storage is touched."""
    obj, assist, data = cfg["objective"], cfg["assist"], cfg["data"]
    space = get_space(cfg["space"]["name"], **cfg["space"]["params"])
    device = resolve_device(cfg["device"])
    needs_batch = obj["kind"] == "proxy" or assist["mode"] != "none" or assist["warmup"] > 0
    if obj["kind"] == "proxy":
        get_proxy(obj["proxy"], **obj["proxy_params"])
        for name in obj["objectives"][1:]:
            get_proxy(name)
        if obj["benchmark"]:
            get_benchmark(obj["benchmark"], **obj["benchmark_params"]).query(
                space.key(space.arch_at(0)), dataset=obj["dataset"], metric=obj["metric"])
    if assist["proxy"]:
        get_proxy(assist["proxy"], **assist["proxy_params"])
    for seed in _seeds(cfg):
        make_sampler(cfg, seed)
    batch = load_batch(data["source"], data["batch_size"], data["seed"], data["num_classes"]) \
        if needs_batch else None
    built = _Built(cfg, _seeds(cfg), study_names(cfg), batch, device)
    objective = _objective(built, None)
    if isinstance(objective, BenchmarkObjective):
        objective.check()
    built.directions = objective.directions
    return built


def _objective(built: _Built, cache: ScoreCache | None) -> ProxyObjective | BenchmarkObjective:
    cfg = built.cfg
    obj = cfg["objective"]
    space = get_space(cfg["space"]["name"], **cfg["space"]["params"])
    if obj["kind"] == "proxy":
        assert built.batch is not None
        return ProxyObjective(space, get_proxy(obj["proxy"], **obj["proxy_params"]), built.batch,
                              seed=obj["init_seed"], device=built.device, cache=cache,
                              objectives=obj["objectives"])
    return BenchmarkObjective(
        space, get_benchmark(obj["benchmark"], **obj["benchmark_params"]), dataset=obj["dataset"],
        metric=obj["metric"], search_metric=obj["search_metric"],
        cost_model=None if obj["cost_model"] == "none" else "auto", cache=cache,
    )


def _sampler(built: _Built, seed: int, cache: ScoreCache) -> BaseSampler:
    cfg = built.cfg
    base = make_sampler(cfg, seed)
    a = cfg["assist"]
    if a["mode"] == "none":
        return base
    assert built.batch is not None
    return ProxyPrescreenSampler(
        base, get_space(cfg["space"]["name"], **cfg["space"]["params"]),
        get_proxy(a["proxy"], **a["proxy_params"]), built.batch, n_candidates=a["n_candidates"],
        mode=a["mode"], random_prob=a["random_prob"], cache=cache, seed=seed,
        proposals=a["proposals"], population=a["population"], tournament=a["tournament"],
        device=built.device, init_seed=a["init_seed"],
    )


def config_sha(cfg: Mapping[str, Any], seed: int | None = None) -> str:
    """Hash of everything that determines one study's trials: not storage, n_trials, heartbeat
    or device, and of the seeds only this study's ``seed`` (so seeds can be added later)."""
    pruned = {s: {k: v for k, v in sec.items() if (s, k) not in _RUN_ONLY}
              for s, sec in cfg.items() if isinstance(sec, Mapping)}
    pruned["study"].pop("seeds", None)
    pruned["study"]["seed"] = seed
    return hashlib.sha256(json.dumps(pruned, sort_keys=True).encode()).hexdigest()[:16]


# --- running ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyResult:
    """What one study holds after :func:`run_study`."""

    study_name: str
    storage: str  # redacted
    n_trials: int
    finished: int
    complete: int
    failed: int
    ran_now: int
    best_value: float | list[float] | None
    best_arch: str | None


def public_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config as stored in the database (study attrs, zcnas_runs): storage URL redacted."""
    out = json.loads(json.dumps(cfg))
    if out.get("study", {}).get("storage"):
        out["study"]["storage"] = redact(out["study"]["storage"])
    return out


def _record_run(cache: ScoreCache, name: str, cfg: Mapping[str, Any], seed: int,
                n_trials: int) -> int:
    row = RunModel(
        study_name=name, config_sha=config_sha(cfg, seed),
        config_json=json.dumps(public_config(cfg), sort_keys=True),
        zcnas_version=__version__, optuna_version=optuna.__version__,
        host=socket.gethostname()[:255], pid=os.getpid(), status="running",
        n_trials_target=n_trials, trials_run=0,
    )
    with cache.session() as s:
        s.add(row)
        s.flush()
        return int(row.id)


def _finish_run(cache: ScoreCache, run_id: int, status: str, ran: int) -> None:
    with cache.session() as s:
        row = s.scalars(select(RunModel).where(RunModel.id == run_id)).one()
        row.status, row.trials_run, row.finished_at = status, ran, _utcnow()


def _check_existing(url: str, rdb: Any, built: _Built) -> None:
    """Refuse before writing if a study of the same name was made with other directions/config."""
    existing = set(optuna.get_all_study_names(storage=rdb))
    for seed, name in zip(built.seeds, built.names):
        if name not in existing:
            continue
        sha = config_sha(built.cfg, seed)
        study = optuna.load_study(study_name=name, storage=rdb)
        have = [d.name.lower() for d in study.directions]
        if have != built.directions:
            raise ZcnasError(
                f"study {name!r} in {redact(url)} already exists with direction(s) {have}, but "
                f"this config needs {built.directions}; change [study] name or delete it with "
                f"`optuna delete-study --study-name {name} --storage <url>`"
            )
        old = study.user_attrs.get("zcnas_config_sha")
        if old is not None and old != sha:
            raise ZcnasError(
                f"study {name!r} in {redact(url)} was started from a different configuration "
                f"(sha {old} vs {sha}); change [study] name to start a new study"
            )


def run_study(path_or_config: str | os.PathLike[str] | Mapping[str, Any], *,
              n_trials: int | None = None, storage: str | None = None) -> list[StudyResult]:
    """Run (or continue) the study(ies) of a study file until each holds ``n_trials`` finished trials.

    ``n_trials``/``storage`` override ``[study]``. Safe to run in several processes at once on
    one storage (the total stays exact) and to rerun after a crash (nothing finished is lost; a
    killed worker's RUNNING trial is failed after the grace period and retried).
    """
    cfg = load_config(path_or_config)
    if n_trials is not None:
        if n_trials < 0:
            raise StudyConfigError("--n-trials must be >= 0")
        cfg["study"]["n_trials"] = n_trials
    if storage is not None:
        cfg["study"]["storage"] = storage
    st = cfg["study"]
    built = _build(cfg)
    url = st["storage"] or default_storage()
    rdb = make_storage(url, heartbeat_interval=st["heartbeat_interval"],
                       grace_period=st["grace_period"], max_retry=st["max_retry"])
    _check_existing(url, rdb, built)
    with StudyLock(url, "<schema>"):
        cache = ScoreCache(url)
    results = []
    for seed, name in zip(built.seeds, built.names):
        results.append(_run_one(built, seed, name, url, rdb, cache))
    return results


def _run_one(built: _Built, seed: int, name: str, url: str, rdb: Any,
             cache: ScoreCache) -> StudyResult:
    cfg = built.cfg
    n_trials = cfg["study"]["n_trials"]
    objective = _objective(built, cache)
    study = create_study(name, storage=rdb, directions=built.directions,
                         sampler=_sampler(built, seed, cache), score_cache=False)
    lock = StudyLock(url, name)
    with lock:
        if "zcnas_config_sha" not in study.user_attrs:
            study.set_user_attr("zcnas_config_sha", config_sha(cfg, seed))
            study.set_user_attr("zcnas_config", public_config(cfg))
            study.set_user_attr("zcnas_seed", seed)
        a = cfg["assist"]
        if a["warmup"] > 0 and n_trials > 0 and "zcnas_warmup" not in study.user_attrs:
            assert built.batch is not None
            warmup(study, get_space(cfg["space"]["name"], **cfg["space"]["params"]),
                   get_proxy(a["proxy"], **a["proxy_params"]), built.batch, pool=a["warmup"],
                   top_k=min(a["warmup_top_k"], n_trials), seed=seed,
                   cache=cache, device=built.device, init_seed=a["init_seed"])
    run_id = _record_run(cache, name, cfg, seed, n_trials)
    ran, status = 0, "failed"
    try:
        ran = optimize_exact(study, objective, n_trials, lock=lock,
                             poll_seconds=min(1.0, cfg["study"]["heartbeat_interval"] / 2))
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        _finish_run(cache, run_id, status, ran)
    counts = trial_counts(study)
    best_value: Any = None
    best_arch = None
    if counts.complete:
        if len(built.directions) == 1:
            best = study.best_trial
            best_value, best_arch = best.value, best.user_attrs.get("arch_key")
        else:
            best_value = [list(t.values) for t in study.best_trials]
    return StudyResult(name, redact(url), n_trials, counts.finished, counts.complete,
                       counts.failed - counts.retried, ran, best_value, best_arch)


def runs(storage: str, study_name: str | None = None) -> list[dict[str, Any]]:
    """The ``zcnas_runs`` rows (one per worker invocation), oldest first."""
    cache = ScoreCache(storage)
    with cache.session() as s:
        q = select(RunModel).order_by(RunModel.id)
        if study_name is not None:
            q = q.where(RunModel.study_name == study_name)
        return [{c: getattr(r, c) for c in (
            "id", "study_name", "config_sha", "zcnas_version", "optuna_version", "host", "pid",
            "status", "n_trials_target", "trials_run", "started_at", "finished_at")}
            for r in s.scalars(q).all()]
