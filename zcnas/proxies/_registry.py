from __future__ import annotations

from zcnas._registry import Registry
from zcnas.exceptions import PluginError
from zcnas.proxies._base import Proxy


def _validate(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Proxy)):
        raise PluginError(f"proxy {cls!r} must subclass zcnas.proxies.Proxy")
    if getattr(cls, "direction", None) not in ("maximize", "minimize"):
        raise PluginError(f"proxy {cls.__name__}.direction must be 'maximize' or 'minimize'")
    for attr in ("name", "version"):
        if not isinstance(getattr(cls, attr, None), str):
            raise PluginError(f"proxy {cls.__name__} needs a str class attribute {attr!r}")


PROXIES: Registry[Proxy] = Registry("proxy", _validate, plural="proxies")


def register_proxy(name: str):  # noqa: ANN201 - decorator
    """Class decorator registering a :class:`Proxy` subclass as ``name`` (sets ``cls.name``)."""

    def decorator(cls: type[Proxy]) -> type[Proxy]:
        cls.name = name
        return PROXIES.register(name)(cls)

    return decorator


def get_proxy(name: str, **params: object) -> Proxy:
    """An instance of the proxy registered as ``name`` with hyper-parameters ``params``."""
    return PROXIES.create(name, **params)


def list_proxies() -> list[str]:
    return PROXIES.names()
