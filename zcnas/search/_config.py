"""One typed configuration model for every file zcnas reads (``zcnas run``, ``zcnas compare``
and ``zcnas score-space`` files), with one validator and one error style.

A file is TOML; each ``[section]`` maps onto a frozen dataclass whose fields (names, types,
defaults, allowed values in ``metadata["choices"]``) are the schema. :func:`parse_section`
checks a section against its dataclass: unknown keys (with a "did you mean"), missing required
keys, wrong types and values outside the choices are one-line :class:`StudyConfigError` s that
name the file, the section and the key. Nothing is written before a file validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from dataclasses import dataclass
from dataclasses import field
import difflib
import os
from pathlib import Path
import sys
import types
import typing
from typing import Any
from typing import TypeVar

from zcnas.exceptions import DataError
from zcnas.exceptions import ZcnasError
from zcnas.spaces import DEFAULT_SPACE


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


T = TypeVar("T")


class StudyConfigError(ZcnasError):
    """A study, compare or score-space file that does not validate."""


def choices(*values: Any, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field whose value must be one of ``values``."""
    return field(default=default, metadata={"choices": values})


def hint(key: str, allowed: Sequence[str]) -> str:
    """``"did you mean 'x'? "`` for the closest of ``allowed``, or an empty string."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


_NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list",
          dict: "a table ({...})", bool: "true or false"}


def _runtime_types(tp: Any) -> tuple[tuple[type, ...], bool]:
    """The runtime types a value of annotation ``tp`` may have, and whether None is allowed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        out: list[type] = []
        optional = False
        for arg in typing.get_args(tp):
            if arg is type(None):
                optional = True
            else:
                out.extend(_runtime_types(arg)[0])
        return tuple(out), optional
    if origin is not None:  # list[int], dict[str, Any], ...
        return (origin,), False
    if tp is Any:
        return (object,), True
    return (tp,), False


def _type_ok(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # TOML true/false is never a number
        return bool in allowed
    return any(isinstance(value, (int, float) if t is float else t) for t in allowed)


def parse_section(cls: type[T], given: Mapping[str, Any], section: str, *,
                  where: str = "") -> T:
    """An instance of dataclass ``cls`` from ``[section]`` of a file (``where`` names the file,
    e.g. ``"studies/x.toml: "``); defaults fill what the section leaves out."""
    if not isinstance(given, Mapping):
        raise StudyConfigError(f"{where}[{section}] must be a table (section), got {given!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in given:
        if key not in fields:
            raise StudyConfigError(f"{where}unknown key {key!r} in [{section}]: "
                                   f"{hint(key, list(fields))}allowed: {', '.join(fields)}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in given:
            if required:
                raise StudyConfigError(f"{where}[{section}] needs {name!r}")
            continue
        value = given[name]
        allowed, optional = _runtime_types(hints[name])
        if value is None and optional:
            values[name] = None
            continue
        if not _type_ok(value, allowed):
            names = " or ".join(_NAMES.get(t, t.__name__) for t in allowed)
            raise StudyConfigError(f"{where}[{section}] {name} must be {names}, got {value!r}")
        options = f.metadata.get("choices")
        if options and value not in options:
            raise StudyConfigError(f"{where}[{section}] {name} = {value!r}: choose one of "
                                   f"{', '.join(map(str, options))}")
        values[name] = float(value) if allowed == (float,) else value
    return cls(**values)


def as_dict(section: Any) -> dict[str, Any]:
    """A section dataclass as a plain dict (what is stored and hashed)."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}


def check_sections(raw: Mapping[str, Any], allowed: Sequence[str], *, where: str = "",
                   top_level: Sequence[str] = ()) -> None:
    """Raise for a top-level name that is neither an allowed section nor a top-level key."""
    names = [*allowed, *top_level]
    for key, value in raw.items():
        if key in top_level:
            continue
        if key not in allowed:
            raise StudyConfigError(f"{where}unknown section or key {key!r}: "
                                   f"{hint(key, names)}allowed: {', '.join(sorted(names))}")
        if not isinstance(value, Mapping):
            raise StudyConfigError(f"{where}[{key}] must be a table (section), got {value!r}")


def read_toml(path: str | os.PathLike[str], what: str, fix: str) -> dict[str, Any]:
    """The parsed TOML file at ``path``: ``DataError`` ("<what> <path> not found; <fix>") if
    it is missing, ``StudyConfigError`` if it is not valid TOML."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {path} not found; {fix}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StudyConfigError(f"{path} is not valid TOML: {exc}") from None


def source(path_or_config: str | os.PathLike[str] | Mapping[str, Any], what: str,
           fix: str) -> tuple[dict[str, Any], str]:
    """``(raw mapping, "path: " prefix for errors)`` of a file path or an already parsed dict."""
    if isinstance(path_or_config, Mapping):
        return dict(path_or_config), ""
    return read_toml(path_or_config, what, fix), f"{path_or_config}: "


# --- sections shared by several file kinds ------------------------------------------------------
@dataclass(frozen=True)
class BatchSection:
    """``[data]``: which images a proxy sees (``zcnas.load_batch`` arguments)."""

    source: str = "cifar10"
    batch_size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class DataSection(BatchSection):
    """``[data]`` of a study file: also the classifier width (default: the data's classes)."""

    num_classes: int | None = None


@dataclass(frozen=True, kw_only=True)
class ScoreSpaceSection:
    """``[score_space]`` of a score-space file: what to score, where, on how many workers."""

    space: str = DEFAULT_SPACE
    space_params: dict[str, Any] = field(default_factory=dict)
    proxy: str
    proxy_params: dict[str, Any] = field(default_factory=dict)
    storage: str | None = None
    slice: str | None = None
    workers: int = 1
    seed: int = 0
    device: str = "cpu"
    heartbeat_interval: int = 10
    grace_period: int | None = None
    max_retry: int = 3
    threads: int | None = None


@dataclass(frozen=True, kw_only=True)
class ScoreSpaceConfig:
    """A validated score-space file (``zcnas score-space FILE``)."""

    score_space: ScoreSpaceSection
    data: DataSection = field(default_factory=DataSection)


def load_score_space(path_or_config: str | os.PathLike[str] | Mapping[str, Any]
                     ) -> ScoreSpaceConfig:
    """Read and validate a score-space file (sections ``[score_space]`` and ``[data]``)."""
    raw, where = source(path_or_config, "score-space file",
                        "see studies/score_space_nb201_gradsign.toml")
    check_sections(raw, ["score_space", "data"], where=where)
    cfg = ScoreSpaceConfig(
        score_space=parse_section(ScoreSpaceSection, raw.get("score_space", {}), "score_space",
                                  where=where),
        data=parse_section(DataSection, raw.get("data", {}), "data", where=where))
    s = cfg.score_space
    for key in ("workers", "heartbeat_interval", "max_retry"):
        if getattr(s, key) < 1:
            raise StudyConfigError(f"{where}[score_space] {key} must be at least 1")
    if cfg.data.batch_size < 1:
        raise StudyConfigError(f"{where}[data] batch_size must be at least 1")
    return cfg
