from __future__ import annotations

from zcnas._registry import Registry
from zcnas.exceptions import PluginError
from zcnas.spaces._base import SearchSpace


def _validate(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise PluginError(f"search space {cls!r} must subclass zcnas.spaces.SearchSpace")


SPACES: Registry[SearchSpace] = Registry("space", _validate)
register_space = SPACES.register


def get_space(name: str, **params: object) -> SearchSpace:
    """An instance of the search space registered as ``name``."""
    return SPACES.create(name, **params)


def list_spaces() -> list[str]:
    return SPACES.names()
