"""Every registered proxy (built-ins, other modules' and installed plugins') passes the
conformance kit on real NB201 networks and a real CIFAR-10 batch, and orders a known pair."""

from __future__ import annotations

import pytest

from tests.conftest import BEST_C10
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.proxies import list_proxies
from zcnas.testing import ProxyTestCase
from zcnas.testing import check_direction


# NB201 index 12784, a cell of only avg_pool and skip ops: 48.96% CIFAR-10 test accuracy against
# 94.37% for BEST_C10. Every NAS-Bench-Suite-Zero proxy orders this pair correctly, and ours did
# under 4 init seeds x 3 batch seeds (fisher, the closest, by a factor >= 1.3 at batch 32).
POOL_SKIP = "|avg_pool_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|avg_pool_3x3~1|skip_connect~2|"  # noqa: E501

# Proxies known to rank POOL_SKIP above BEST_C10, with the evidence. A proxy listed here gets an
# xfail for the direction test only (keep the reason specific). None of the built-ins is here.
KNOWN_MISORDERED: dict[str, str] = {
    "myproxy": "plugins/template's placeholder (std of the logits) is a copy-me stub, not a "
               "predictor; its own tests check it",
}

# Ensembles combine cached member scores inside zcnas.score (a reference pool of cells), so the
# kit's direct ``compute`` checks do not apply; tests/analysis_tests/test_ensembles.py covers them.
ENSEMBLES = {"ensemble", "learned_ensemble"}


def _registered() -> list[str]:
    """Proxies of zcnas and of installed plugins (entry points). Throw-away proxies that other
    test modules register in the same process are left out."""
    from zcnas.proxies import PROXIES

    def shipped(name: str) -> bool:
        module = PROXIES.get_class(name).__module__
        return module.startswith("zcnas.") or PROXIES.is_entry_point(name)

    return [n for n in list_proxies() if n not in ENSEMBLES and shipped(n)]

# Proxies whose four NB201 scores take more than ~5 s on one CPU thread.
SLOW = {"grasp", "swap", "vkdnw"}


def _params(names: list[str]) -> list:
    return [pytest.param(n, id=n, marks=[pytest.mark.slow] if n in SLOW else []) for n in names]


@pytest.fixture(scope="module")
def cifar_batch(shared_data) -> Batch:  # noqa: ANN001 - pytest fixture
    return load_batch("cifar10", 16, seed=0)


class TestRegisteredProxies(ProxyTestCase):
    """The kit's tests, once per registered proxy, on the real CIFAR-10 sample."""

    @pytest.fixture(params=_params(_registered()))
    def proxy(self, request: pytest.FixtureRequest) -> Proxy:
        return get_proxy(request.param)

    @pytest.fixture
    def batch(self, cifar_batch: Batch) -> Batch:
        return cifar_batch


def test_builtins_registered() -> None:
    expected = {"fisher", "flops", "grad_norm", "grasp", "jacob_cov", "naswot", "params", "snip",
                "synflow", "zico"}
    assert expected <= set(list_proxies())


@pytest.mark.parametrize("name", _params(_registered()))
def test_orders_best_cell_above_pool_skip_cell(name: str, shared_data) -> None:  # noqa: ANN001
    if name in KNOWN_MISORDERED:
        pytest.xfail(KNOWN_MISORDERED[name])
    check_direction(get_proxy(name), BEST_C10, POOL_SKIP, load_batch("cifar10", 32, seed=0))
