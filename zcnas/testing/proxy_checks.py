"""Conformance checks every zcnas proxy must pass (reusable by plugin authors).

Two ways to use them::

    # 1. plain functions, anywhere (raise AssertionError naming the broken rule)
    from zcnas.testing import check_proxy
    check_proxy(MyProxy())

    # 2. a pytest base class: override the ``proxy`` fixture, inherit the tests
    import pytest
    from zcnas.testing import ProxyTestCase

    class TestMyProxy(ProxyTestCase):
        @pytest.fixture
        def proxy(self):
            return MyProxy(alpha=0.5)

What is checked: the class attributes are valid; ``get_params`` round-trips through
``get_proxy(name, **params)`` and is JSON-serialisable; the score is a finite ``float`` on two
real NAS-Bench-201 networks; the same (arch, batch, seed) gives the same score; a proxy that
declares ``uses_data = False`` ignores the batch contents and one that declares
``uses_labels = False`` ignores the targets (the score cache relies on both); and scoring leaves
torch's global state (grad mode, default dtype) as it found it.
"""

from __future__ import annotations

from collections.abc import Sequence
import json
import math
from typing import Any

import torch

from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.data import synthetic_batch
from zcnas.exceptions import DataError
from zcnas.proxies import PROXIES
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.scoring import fresh_model
from zcnas.scoring import isolated_rng
from zcnas.spaces import DEFAULT_SPACE
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space


try:
    import pytest
except ImportError:  # pragma: no cover - only the pytest base class needs it
    pytest = None  # type: ignore[assignment]


# Two real NB201 cells of different shape: the best CIFAR-10 cell (index 6111, 94.37%) and the
# ResNet-like cell (index 11472, 93.91%, has ``none`` edges and a skip path).
CHECK_ARCHS: tuple[str, ...] = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
)
REL_TOL = 1e-9


def default_batch(batch_size: int = 16, seed: int = 0) -> Batch:
    """The shared real CIFAR-10 sample if it is present, else a seeded synthetic batch."""
    try:
        return load_batch("cifar10", batch_size, seed=seed)
    except DataError:
        return synthetic_batch(batch_size, seed=seed)


def _raw_score(proxy: Proxy, arch: str, batch: Batch, seed: int,
               space: SearchSpace | None = None) -> Any:
    """Exactly what ``zcnas.scoring.compute_score`` does, without its ``float()``."""
    space = space or get_space(DEFAULT_SPACE)
    with isolated_rng("cpu"):
        model = fresh_model(space, space.parse(arch), batch.num_classes, seed)
        return proxy.compute(model, batch)


def _same(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)


def check_class_attributes(proxy: Proxy | type[Proxy]) -> None:
    """``name``, ``direction``, ``version``, ``paper``, ``uses_data``, ``uses_labels`` and the
    docstring are present and of the right type; the name is registered to this class."""
    cls = proxy if isinstance(proxy, type) else type(proxy)
    where = cls.__name__
    assert issubclass(cls, Proxy), f"{where} must subclass zcnas.proxies.Proxy"
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{where}.name must be a non-empty str (use @register_proxy)"
    assert name == name.lower() and " " not in name, \
        f"{where}.name {name!r} must be lowercase, without spaces"
    assert cls.direction in ("maximize", "minimize"), \
        f"{where}.direction must be 'maximize' or 'minimize', got {cls.direction!r}"
    assert isinstance(cls.version, str) and cls.version, f"{where}.version must be a non-empty str"
    assert isinstance(cls.paper, str) and cls.paper.strip(), f"{where}.paper must name the reference"
    assert isinstance(cls.uses_data, bool), f"{where}.uses_data must be a bool"
    assert isinstance(cls.uses_labels, bool), f"{where}.uses_labels must be a bool"
    assert cls.uses_data or not cls.uses_labels, \
        f"{where} says uses_labels=True but uses_data=False; labels are data"
    assert cls.__doc__ and cls.__doc__ is not Proxy.__doc__ and cls.__doc__.strip(), \
        f"{where} needs a docstring stating its formula"
    if PROXIES.is_registered(name):
        assert PROXIES.get_class(name) is cls, \
            f"{name!r} is registered to {PROXIES.get_class(name).__name__}, not {where}"


def check_params_round_trip(proxy: Proxy) -> None:
    """``get_proxy(name, **p.get_params())`` builds an equal-params instance; params are JSON."""
    params = proxy.get_params()
    assert isinstance(params, dict), f"{proxy.name}.get_params() must return a dict"
    try:
        json.dumps(params, sort_keys=True)
    except TypeError as exc:
        raise AssertionError(f"{proxy.name}.get_params() must be JSON-serialisable: {exc}") from exc
    if PROXIES.is_registered(proxy.name):
        again = get_proxy(proxy.name, **params)
    else:
        again = type(proxy)(**params)
    assert type(again) is type(proxy), f"get_proxy({proxy.name!r}) built {type(again).__name__}"
    assert again.get_params() == params, \
        f"{proxy.name}: get_params() {params} does not round-trip (got {again.get_params()})"


def check_scores(proxy: Proxy, batch: Batch | None = None,
                 archs: Sequence[str] = CHECK_ARCHS, seed: int = 0) -> dict[str, float]:
    """Each arch scores a finite float, twice the same; global torch state is left alone.

    Returns ``{arch: score}``.
    """
    batch = batch if batch is not None else default_batch()
    scores: dict[str, float] = {}
    for arch in archs:
        grad_mode, dtype = torch.is_grad_enabled(), torch.get_default_dtype()
        first = _raw_score(proxy, arch, batch, seed)
        assert torch.is_grad_enabled() == grad_mode, f"{proxy.name} changed torch's grad mode"
        assert torch.get_default_dtype() == dtype, f"{proxy.name} changed torch's default dtype"
        assert isinstance(first, float), \
            f"{proxy.name}.compute must return a float, got {type(first).__name__}"
        assert math.isfinite(first), f"{proxy.name} gave {first} on {arch}"
        second = _raw_score(proxy, arch, batch, seed)
        assert _same(first, second), \
            f"{proxy.name} is not deterministic on {arch}: {first!r} then {second!r} (same seed)"
        scores[arch] = first
    return scores


def check_declared_inputs(proxy: Proxy, batch: Batch | None = None,
                          arch: str = CHECK_ARCHS[0], seed: int = 0) -> None:
    """``uses_data=False``: same score on another batch of the same shape (the cache keys such
    proxies by shape only). ``uses_labels=False``: same score with other targets."""
    batch = batch if batch is not None else default_batch()
    if proxy.uses_data and proxy.uses_labels:
        return
    base = float(_raw_score(proxy, arch, batch, seed))
    g = torch.Generator().manual_seed(12345)
    if not proxy.uses_data:
        other = Batch(torch.randn(batch.inputs.shape, generator=g), batch.targets.roll(1),
                      batch.num_classes, "conformance")
        value = float(_raw_score(proxy, arch, other, seed))
        assert _same(base, value), \
            f"{proxy.name} declares uses_data=False but its score changed with the batch " \
            f"contents ({base!r} -> {value!r}); set uses_data = True"
    else:
        targets = (batch.targets + 1 + torch.randint(0, batch.num_classes - 1, batch.targets.shape,
                                                      generator=g)) % batch.num_classes
        other = Batch(batch.inputs, targets, batch.num_classes, "conformance")
        value = float(_raw_score(proxy, arch, other, seed))
        assert _same(base, value), \
            f"{proxy.name} declares uses_labels=False but its score changed with the targets " \
            f"({base!r} -> {value!r}); set uses_labels = True"


def check_direction(proxy: Proxy, better: str, worse: str, batch: Batch | None = None,
                    seed: int = 0) -> tuple[float, float]:
    """The proxy ranks NB201 cell ``better`` above ``worse`` according to its ``direction``.

    Use a pair whose order is not in doubt (e.g. the best CIFAR-10 cell against a cell of only
    pooling and skip ops). Returns the two scores.
    """
    batch = batch if batch is not None else default_batch(32)
    good = float(_raw_score(proxy, better, batch, seed))
    bad = float(_raw_score(proxy, worse, batch, seed))
    ordered = good > bad if proxy.direction == "maximize" else good < bad
    assert ordered, \
        f"{proxy.name} ({proxy.direction}) scores the better cell {good!r} and the worse one " \
        f"{bad!r}: wrong order (check the sign convention or the direction attribute)"
    return good, bad


def check_proxy(proxy: Proxy | str, batch: Batch | None = None,
                archs: Sequence[str] = CHECK_ARCHS, seed: int = 0) -> dict[str, float]:
    """Run every conformance check on ``proxy`` (an instance or a registered name).

    Raises ``AssertionError`` naming the first broken rule; returns ``{arch: score}``.
    """
    proxy = get_proxy(proxy) if isinstance(proxy, str) else proxy
    batch = batch if batch is not None else default_batch()
    check_class_attributes(proxy)
    check_params_round_trip(proxy)
    scores = check_scores(proxy, batch, archs, seed)
    check_declared_inputs(proxy, batch, archs[0], seed)
    return scores


if pytest is not None:

    class ProxyTestCase:
        """pytest base class: subclass it as ``Test<Something>`` and override ``proxy``.

        Override ``batch`` too to score on your own data (default: the shared CIFAR-10 sample,
        or synthetic images where it is absent).
        """

        @pytest.fixture
        def proxy(self) -> Proxy:
            pytest.fail("override the `proxy` fixture of your ProxyTestCase subclass")

        @pytest.fixture
        def batch(self) -> Batch:
            return default_batch()

        def test_class_attributes(self, proxy: Proxy) -> None:
            check_class_attributes(proxy)

        def test_params_round_trip(self, proxy: Proxy) -> None:
            check_params_round_trip(proxy)

        def test_finite_and_deterministic_on_nb201(self, proxy: Proxy, batch: Batch) -> None:
            scores = check_scores(proxy, batch)
            assert len(scores) == len(CHECK_ARCHS)

        def test_declared_inputs(self, proxy: Proxy, batch: Batch) -> None:
            check_declared_inputs(proxy, batch)
