"""Test helpers for zcnas and its plugins: the proxy and search-space conformance kits.

``check_proxy(proxy)`` / ``check_space(space)`` run every check as plain asserts;
``ProxyTestCase`` / ``SpaceTestCase`` (need pytest) are base classes whose ``proxy`` / ``space``
fixture a plugin's test overrides. See :mod:`zcnas.testing.proxy_checks` and
:mod:`zcnas.testing.space_checks`.
"""

from zcnas.testing.proxy_checks import CHECK_ARCHS
from zcnas.testing.proxy_checks import check_class_attributes
from zcnas.testing.proxy_checks import check_declared_inputs
from zcnas.testing.proxy_checks import check_direction
from zcnas.testing.proxy_checks import check_params_round_trip
from zcnas.testing.proxy_checks import check_proxy
from zcnas.testing.proxy_checks import check_scores
from zcnas.testing.proxy_checks import default_batch
from zcnas.testing.space_checks import ScoreOutcome
from zcnas.testing.space_checks import check_build
from zcnas.testing.space_checks import check_invalid
from zcnas.testing.space_checks import check_keys
from zcnas.testing.space_checks import check_mutations
from zcnas.testing.space_checks import check_proxies
from zcnas.testing.space_checks import check_sample
from zcnas.testing.space_checks import check_size
from zcnas.testing.space_checks import check_space
from zcnas.testing.space_checks import default_proxies
from zcnas.testing.space_checks import score_network
from zcnas.testing.space_checks import space_batch


__all__ = [
    "CHECK_ARCHS", "ProxyTestCase", "ScoreOutcome", "SpaceTestCase", "check_build",
    "check_class_attributes", "check_declared_inputs", "check_direction", "check_invalid",
    "check_keys", "check_mutations", "check_params_round_trip", "check_proxies", "check_proxy",
    "check_sample", "check_scores", "check_size", "check_space", "default_batch",
    "default_proxies", "score_network", "space_batch",
]


def __getattr__(name: str):  # noqa: ANN202 - module __getattr__
    if name in ("ProxyTestCase", "SpaceTestCase"):
        try:
            from zcnas.testing.proxy_checks import ProxyTestCase
            from zcnas.testing.space_checks import SpaceTestCase
        except ImportError:
            from zcnas.exceptions import PluginError

            raise PluginError(
                f"zcnas.testing.{name} needs pytest: pip install 'zcnas[dev]'"
            ) from None
        return {"ProxyTestCase": ProxyTestCase, "SpaceTestCase": SpaceTestCase}[name]
    raise AttributeError(f"module 'zcnas.testing' has no attribute {name!r}")
