"""Name -> factory registries, filled by decorators and by entry points (lazily).

Built-ins register with ``@register_proxy("name")`` (or space/benchmark) in their own module;
third-party packages declare ``[project.entry-points."zcnas.proxies"] name = "pkg.mod:Class"``.
An entry point is imported only when its name is asked for (or when all names are listed), so a
broken plugin cannot break ``import zcnas``.
"""

from __future__ import annotations

from collections.abc import Callable
import difflib
from importlib import metadata
import logging
from typing import Generic
from typing import TypeVar

from zcnas.exceptions import PluginError
from zcnas.exceptions import UnknownComponentError


_logger = logging.getLogger(__name__)
T = TypeVar("T")


class Registry(Generic[T]):
    """A registry of one role (``kind``: ``proxy``, ``space`` or ``benchmark``).

    Args:
        kind: role name used in messages; the entry-point group is ``zcnas.<plural>``.
        validate: called with each class on registration; raises ``PluginError`` if it is not
            a valid member of the role.
    """

    def __init__(self, kind: str, validate: Callable[[type[T]], None] | None = None,
                 plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.group = f"zcnas.{self.plural}"
        self._validate = validate
        self._classes: dict[str, type[T]] = {}
        self._sources: dict[str, str] = {}
        self._entry_points: dict[str, metadata.EntryPoint] | None = None
        self._ep_conflicts: dict[str, tuple[str, str]] = {}
        self._ep_loaded: set[str] = set()

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: register ``cls`` under ``name``; duplicates raise."""

        def decorator(cls: type[T]) -> type[T]:
            self._add(name, cls, source=f"{cls.__module__}.{cls.__qualname__}")
            return cls

        return decorator

    def _add(self, name: str, cls: type[T], source: str) -> None:
        if name in self._classes and self._classes[name] is not cls:
            raise PluginError(
                f"{self.kind} name {name!r} is registered twice: by {self._sources[name]} and by "
                f"{source}; rename one of them"
            )
        if self._validate is not None:
            self._validate(cls)
        self._classes[name] = cls
        self._sources[name] = source

    def _plugin_entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._entry_points is None:
            eps: dict[str, metadata.EntryPoint] = {}
            self._ep_conflicts = {}
            self._ep_loaded = set()
            for ep in metadata.entry_points(group=self.group):
                if ep.name in eps and eps[ep.name].value != ep.value:
                    self._ep_conflicts.setdefault(ep.name, (eps[ep.name].value, ep.value))
                    continue
                eps[ep.name] = ep
            self._entry_points = eps
        return self._entry_points

    def _load_entry_point(self, name: str) -> None:
        ep = self._plugin_entry_points()[name]
        if name in self._ep_conflicts:
            first, second = self._ep_conflicts[name]
            raise PluginError(
                f"{self.kind} name {name!r} is claimed by two plugins: entry points {first} and "
                f"{second}; uninstall or rename one of them"
            )
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must name itself
            raise PluginError(
                f"plugin {self.kind} {name!r} ({ep.value}) failed to import: {exc}; "
                f"fix or uninstall the package that provides it"
            ) from exc
        declared = getattr(cls, "name", name)
        if isinstance(declared, str) and declared != name:  # scores are keyed by cls.name
            raise PluginError(
                f"plugin {self.kind} {name!r} ({ep.value}) has name = {declared!r}; make the "
                f"entry-point name and the class attribute equal"
            )
        self._add(name, cls, source=f"entry point {ep.value}")
        self._ep_loaded.add(name)

    def get_class(self, name: str) -> type[T]:
        """The class registered as ``name``; raises ``UnknownComponentError`` naming the options."""
        if name in self._plugin_entry_points() and name not in self._ep_loaded:
            self._load_entry_point(name)  # also when a built-in has the name: duplicates raise
        if name not in self._classes:
            known = self.names()
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}: {hint}choose one of {', '.join(known)} "
                f"(`zcnas {self.plural}` lists them)"
            )
        return self._classes[name]

    def create(self, name: str, **params: object) -> T:
        """Instantiate ``name`` with keyword parameters."""
        cls = self.get_class(name)
        try:
            return cls(**params)  # type: ignore[call-arg]
        except TypeError as exc:
            raise UnknownComponentError(
                f"bad parameters for {self.kind} {name!r}: {exc}"
            ) from exc

    def names(self) -> list[str]:
        """All registered names, plugins included (loading each plugin once)."""
        for name in self._plugin_entry_points():
            if name not in self._ep_loaded:
                try:
                    self._load_entry_point(name)
                except PluginError as exc:
                    _logger.warning("%s", exc)
        return sorted(self._classes)

    def is_entry_point(self, name: str) -> bool:
        """True if ``name`` comes from an installed package's entry point."""
        return name in self._plugin_entry_points()

    def is_registered(self, name: str) -> bool:
        return name in self._classes or name in self._plugin_entry_points()
