"""Test helpers for zcnas and its plugins: the proxy conformance kit.

``check_proxy(proxy)`` runs every check as plain asserts; ``ProxyTestCase`` (needs pytest) is a
base class whose ``proxy`` fixture a plugin's test overrides. See :mod:`zcnas.testing.proxy_checks`.
"""

from zcnas.testing.proxy_checks import CHECK_ARCHS
from zcnas.testing.proxy_checks import check_class_attributes
from zcnas.testing.proxy_checks import check_declared_inputs
from zcnas.testing.proxy_checks import check_direction
from zcnas.testing.proxy_checks import check_params_round_trip
from zcnas.testing.proxy_checks import check_proxy
from zcnas.testing.proxy_checks import check_scores
from zcnas.testing.proxy_checks import default_batch


__all__ = [
    "CHECK_ARCHS", "ProxyTestCase", "check_class_attributes", "check_declared_inputs",
    "check_direction",
    "check_params_round_trip", "check_proxy", "check_scores", "default_batch",
]


def __getattr__(name: str):  # noqa: ANN202 - module __getattr__
    if name == "ProxyTestCase":
        try:
            from zcnas.testing.proxy_checks import ProxyTestCase
        except ImportError:
            from zcnas.exceptions import PluginError

            raise PluginError(
                "zcnas.testing.ProxyTestCase needs pytest: pip install 'zcnas[dev]'"
            ) from None
        return ProxyTestCase
    raise AttributeError(f"module 'zcnas.testing' has no attribute {name!r}")
