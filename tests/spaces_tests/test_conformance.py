"""Every registered search space (built-ins and installed plugins) passes the space conformance
kit, and every registered proxy scores its networks (a small instance where the space has size
parameters; the full-size networks are built in the slow test)."""

from __future__ import annotations

from typing import Any

import pytest

from zcnas.data import Batch
from zcnas.exceptions import InvalidArchError
from zcnas.proxies import PROXIES
from zcnas.spaces import SPACES
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.spaces import list_spaces
from zcnas.testing import SpaceTestCase
from zcnas.testing import check_build
from zcnas.testing import check_sample
from zcnas.testing import check_space
from zcnas.testing import default_proxies
from zcnas.testing import space_batch


# Cheap stand-ins (same keys, fewer channels/cells) for building and scoring in the fast tests.
SMALL: dict[str, dict[str, Any]] = {
    "nb201": {"channels": 8, "cells_per_stage": 1},
    "nb101": {"stem_channels": 16, "modules_per_stack": 1},
    "darts": {"channels": 4, "layers": 3},
    "nb301": {"channels": 4, "layers": 3},
    "darts_swap": {"channels": 4, "layers": 3},
    "tnb101_micro": {"channels": 8},
    "tnb101_macro": {"channels": 8},
}
# Proxies whose three scores on a space's (small) networks take more than ~5 s on one CPU thread.
SLOW = {"grasp"}


def _shipped(registry: Any, name: str) -> bool:
    module = registry.get_class(name).__module__
    return module.startswith("zcnas.") or registry.is_entry_point(name)


def _spaces() -> list[str]:
    """Spaces of zcnas and of installed plugins (not throw-away ones other tests register)."""
    return [n for n in list_spaces() if _shipped(SPACES, n)]


def _proxies() -> list[Any]:
    return [pytest.param(n, id=n, marks=[pytest.mark.slow] if n in SLOW else [])
            for n in default_proxies() if _shipped(PROXIES, n)]


class TestRegisteredSpaces(SpaceTestCase):
    """The kit's tests once per registered space; the proxy test once per (space, proxy)."""

    @pytest.fixture(params=_spaces())
    def space(self, request: pytest.FixtureRequest) -> SearchSpace:
        return get_space(request.param)

    @pytest.fixture
    def small_space(self, space: SearchSpace) -> SearchSpace:
        return get_space(space.name, **SMALL.get(space.name, {}))

    @pytest.fixture
    def batch(self, small_space: SearchSpace) -> Batch:
        return space_batch(small_space)

    @pytest.fixture(params=_proxies())
    def proxies(self, request: pytest.FixtureRequest) -> list[str]:
        return [request.param]


def test_builtin_spaces_are_checked() -> None:
    assert {"nb201", "nb101", "nats_sss", "darts", "nb301", "darts_swap", "tnb101_micro",
            "tnb101_macro"} <= set(_spaces())


@pytest.mark.slow
@pytest.mark.parametrize("name", _spaces())
def test_full_size_networks_build_and_run(name: str) -> None:
    space = get_space(name)
    for arch in check_sample(space, 2, seed=1):
        check_build(space, arch)


class _BrokenSpace(SearchSpace):
    """NB201 whose parse accepts any string (breaks "parse raises on a malformed key")."""

    name = "broken"

    def __init__(self) -> None:
        self._inner = get_space("nb201", channels=8, cells_per_stage=1)

    @property
    def distributions(self) -> dict:
        return self._inner.distributions

    def key(self, arch: Any) -> str:
        return self._inner.key(arch)

    def parse(self, key: str) -> dict:
        try:
            return self._inner.parse(key)
        except InvalidArchError:
            return self._inner.arch_at(0)

    def build(self, arch: Any, num_classes: int = 10) -> Any:
        return self._inner.build(arch, num_classes)


def test_the_kit_names_a_broken_rule() -> None:
    with pytest.raises(AssertionError, match="parse\\('.*'\\) must raise InvalidArchError"):
        check_space(_BrokenSpace(), proxies=[])


def test_the_kit_returns_the_proxy_table() -> None:
    space = get_space("nb201", channels=8, cells_per_stage=1)
    table = check_space(space, n=2, proxies=["params", "synflow"])
    assert sorted(table) == ["params", "synflow"]
    for row in table.values():
        assert len(row) == 2 and all(o.ok and o.value is not None for o in row.values())
