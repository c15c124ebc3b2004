"""Conformance checks every zcnas search space must pass (reusable by plugin authors).

Two ways to use them::

    # 1. plain functions, anywhere (raise AssertionError naming the broken rule)
    from zcnas.testing import check_space
    check_space(MySpace(), small=MySpace(width=8))

    # 2. a pytest base class: override the ``space`` fixture (and ``small_space`` for a cheap
    #    instance to build and score), inherit the tests
    import pytest
    from zcnas.testing import SpaceTestCase

    class TestMySpace(SpaceTestCase):
        @pytest.fixture
        def space(self):
            return MySpace()

What is checked (the SearchSpace role of :mod:`zcnas.spaces._base`): ``size()`` is a positive
int (the number of encodings when every encoding is valid); ``sample(n, seed)`` is reproducible,
seed-dependent, unique by key and valid, and its encodings use exactly the space's parameters and
choices; ``parse(key(a))`` gives an encoding of the same key; ``key`` raises
``InvalidArchError`` for a missing parameter, for a malformed key string and (when ``all_valid``
is False) for some invalid encoding of the grid, and never for sampled ones; ``mutate`` and
``neighbours`` stay valid and change exactly one parameter; ``build`` (global torch RNG) maps a
batch of ``input_size`` images to ``num_classes`` finite logits, the same network for the same
seed; every proxy scores the sampled networks, giving a finite score or a failure that zcnas'
scorer records (NaN/inf, out of memory) with a reason naming the proxy -- never an exception.

Proxies on full-size networks are slow on a CPU, so ``small`` (``small_space``) may be a cheaper
instance of the same space (fewer channels or cells; same keys) for building and scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import math
import time
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn

from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import DataError
from zcnas.exceptions import InvalidArchError
from zcnas.exceptions import ScoreError
from zcnas.proxies import PROXIES
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.scoring import fresh_model
from zcnas.scoring import isolated_rng
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space


try:
    import pytest
except ImportError:  # pragma: no cover - only the pytest base class needs it
    pytest = None  # type: ignore[assignment]


BATCH_SIZE = 8
INVALID_DRAWS = 1000  # uniform encodings tried to find an invalid one (all_valid False)


@dataclass(frozen=True)
class ScoreOutcome:
    """One proxy score of one network: ``value`` (finite) or ``reason`` (a recorded failure)."""

    value: float | None
    reason: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.reason is None


def space_batch(space: SearchSpace, batch_size: int = BATCH_SIZE, seed: int = 0,
                num_classes: int = 10) -> Batch:
    """A batch for ``space``: the shared CIFAR-10 sample for 3x32x32 spaces when present, else
    seeded Gaussian images of ``space.input_size``."""
    if tuple(space.input_size) == (3, 32, 32):
        try:
            return load_batch("cifar10", batch_size, seed=seed, num_classes=num_classes)
        except DataError:
            pass
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch_size, *space.input_size, generator=g)
    targets = torch.randint(0, num_classes, (batch_size,), generator=g)
    return Batch(inputs, targets, num_classes, f"synthetic{tuple(space.input_size)}(seed={seed})")


def score_network(space: SearchSpace, proxy: Proxy, arch: Mapping[str, Any], batch: Batch,
                  seed: int = 0) -> ScoreOutcome:
    """Score one network as zcnas's choke point does (``zcnas.scoring.fresh_model``: seed,
    fresh build, ``train()``; the proxy's ``check_model``; ``compute``) and apply its failure
    policy: a NaN/inf score, an out-of-memory error or a ``ScoreError`` the proxy raises to
    name its limitation (e.g. "needs ReLU") is a recorded failure; any other exception
    propagates: the kit fails on it (in a search it would be a proxy bug, recorded only as a
    failed trial)."""
    start = time.perf_counter()
    try:
        with isolated_rng("cpu"):
            model = fresh_model(space, arch, batch.num_classes, seed)
            proxy.check_model(model)
            value = float(proxy.compute(model, batch))
    except torch.OutOfMemoryError:
        return ScoreOutcome(None, f"{proxy.name}: out of memory with batch {len(batch)}",
                            time.perf_counter() - start)
    except ScoreError as exc:
        return ScoreOutcome(None, f"{proxy.name}: {exc}", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return ScoreOutcome(None, f"{proxy.name} returned {value} (non-finite score)", seconds)
    return ScoreOutcome(value, None, seconds)


def default_proxies() -> list[str]:
    """Every registered proxy (composites such as ensembles are evaluators, not proxies: their
    members are proxies and are checked)."""
    return PROXIES.names()


def _where(space: SearchSpace) -> str:
    return f"space {getattr(space, 'name', type(space).__name__)!r}"


def _diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [k for k in a if a[k] != b.get(k)]


def check_size(space: SearchSpace) -> int:
    """``size()`` is a positive Python int; when every encoding is valid, at most
    ``encodings()`` (equal unless keys merge encodings, as DARTS's unordered input pairs do)."""
    where = _where(space)
    size = space.size()
    assert isinstance(size, int) and not isinstance(size, bool), \
        f"{where}.size() must return an int, got {type(size).__name__}"
    assert size > 0, f"{where}.size() must be positive, got {size}"
    if space.all_valid:
        try:
            encodings = space.encodings()
        except InvalidArchError:  # non-categorical parameters: no grid to count
            return size
        assert size <= encodings, \
            f"{where}: all_valid is True but size() {size} > encodings() {encodings}"
    return size


def _check_encoding(space: SearchSpace, arch: Mapping[str, Any], what: str) -> str:
    """``arch`` has exactly the space's parameters, values within their distributions, and a
    key; returns the key."""
    where = _where(space)
    dists = space.distributions
    assert isinstance(arch, dict), f"{where}: {what} must be a dict, got {type(arch).__name__}"
    assert set(arch) == set(dists), \
        f"{where}: {what} has parameters {sorted(arch)}, the space declares {sorted(dists)}"
    for name, dist in dists.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            assert arch[name] in dist.choices, \
                f"{where}: {what} sets {name}={arch[name]!r}, not one of {dist.choices}"
        else:
            assert dist._contains(dist.to_internal_repr(arch[name])), \
                f"{where}: {what} sets {name}={arch[name]!r}, outside {dist}"
    try:
        key = space.key(arch)
    except InvalidArchError as exc:
        raise AssertionError(f"{where}: {what} is not valid ({exc}); sample/mutate/neighbours "
                             f"must return valid architectures only") from None
    assert isinstance(key, str) and key, f"{where}.key() must return a non-empty str, got {key!r}"
    return key


def check_sample(space: SearchSpace, n: int = 3, seed: int = 0) -> list[Arch]:
    """``sample(n, seed)``: the same archs twice, another draw for another seed (spaces of
    1000+ archs), unique keys, valid encodings. Returns the sample."""
    where = _where(space)
    first = space.sample(n, seed=seed)
    again = space.sample(n, seed=seed)
    assert isinstance(first, list) and len(first) == n, \
        f"{where}.sample({n}) must return a list of {n} archs, got {len(first)}"
    assert first == again, f"{where}.sample({n}, seed={seed}) is not reproducible"
    keys = [_check_encoding(space, a, f"sample({n}, seed={seed}) arch") for a in first]
    assert len(set(keys)) == n, f"{where}.sample({n}) returned repeated keys: {keys}"
    if space.size() >= 1000 and n >= 2:
        other = [space.key(a) for a in space.sample(n, seed=seed + 1)]
        assert other != keys, f"{where}.sample ignores its seed (seeds {seed}, {seed + 1} agree)"
    return first


def check_keys(space: SearchSpace, archs: Sequence[Mapping[str, Any]]) -> None:
    """``parse(key(a))`` is a valid encoding with the same key; ``as_arch`` accepts the key."""
    where = _where(space)
    for arch in archs:
        key = space.key(arch)
        parsed = space.parse(key)
        assert _check_encoding(space, parsed, f"parse({key!r})") == key, \
            f"{where}: key(parse({key!r})) != {key!r} (parse must invert key)"
        assert space.key(space.as_arch(key)) == key, f"{where}.as_arch({key!r}) changed the key"


def _random_encoding(space: SearchSpace, rng: np.random.Generator) -> Arch:
    """One encoding drawn uniformly per parameter (valid or not)."""
    enc: Arch = {}
    for name, dist in space.distributions.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            enc[name] = dist.choices[int(rng.integers(len(dist.choices)))]
        elif isinstance(dist, optuna.distributions.IntDistribution):
            enc[name] = int(dist.low + dist.step * rng.integers((dist.high - dist.low) // dist.step + 1))
        elif isinstance(dist, optuna.distributions.FloatDistribution):
            enc[name] = float(rng.uniform(dist.low, dist.high))
        else:
            raise AssertionError(f"{_where(space)}: parameter {name!r} has an unsupported "
                                 f"distribution {type(dist).__name__}")
    return enc


def check_invalid(space: SearchSpace, arch: Mapping[str, Any], seed: int = 0) -> None:
    """``key`` raises ``InvalidArchError`` for a missing parameter and (``all_valid`` False)
    for an invalid encoding of the grid; ``parse`` raises it for a malformed string."""
    where = _where(space)
    name = next(iter(space.distributions))
    partial = {k: v for k, v in arch.items() if k != name}
    try:
        space.key(partial)
    except InvalidArchError:
        pass
    else:
        raise AssertionError(f"{where}.key() accepted an encoding without {name!r}; it must "
                             f"raise InvalidArchError")
    for bad in ("\x00not-an-architecture\x00", ""):
        try:
            space.parse(bad)
        except InvalidArchError:
            continue
        raise AssertionError(f"{where}.parse({bad!r}) must raise InvalidArchError")
    if space.all_valid:
        return
    rng = np.random.default_rng(seed)
    for _ in range(INVALID_DRAWS):
        enc = _random_encoding(space, rng)
        try:
            space.key(enc)
        except InvalidArchError as exc:
            assert str(exc).strip() and "\n" not in str(exc), \
                f"{where}: InvalidArchError needs a one-line reason, got {str(exc)!r}"
            assert not space.is_valid(enc), f"{where}.is_valid() is True for an invalid encoding"
            return
    raise AssertionError(f"{where}: all_valid is False but {INVALID_DRAWS} uniform encodings all "
                         f"had keys; set all_valid True or make key() reject invalid ones")


def check_mutations(space: SearchSpace, archs: Sequence[Mapping[str, Any]], seed: int = 0) -> None:
    """``neighbours(a)`` and ``mutate(a, rng)`` are valid, differ from ``a`` in exactly one
    parameter, and every mutation is a neighbour."""
    where = _where(space)
    rng = np.random.default_rng(seed)
    for arch in archs:
        neighbours = space.neighbours(arch)
        assert neighbours, f"{where}.neighbours() of {space.key(arch)} is empty"
        for nb in neighbours:
            _check_encoding(space, nb, "a neighbour")
            changed = _diff(arch, nb)
            assert len(changed) == 1, \
                f"{where}: a neighbour differs in {changed}, not in exactly one parameter"
        for _ in range(3):
            child = space.mutate(arch, rng)
            _check_encoding(space, child, "a mutation")
            changed = _diff(arch, child)
            assert len(changed) == 1, \
                f"{where}.mutate() changed {changed}, not exactly one parameter"
            assert child in neighbours, f"{where}.mutate() returned a non-neighbour {child}"


def check_build(space: SearchSpace, arch: Mapping[str, Any], batch: Batch | None = None,
                num_classes: int = 7) -> nn.Module:
    """``build(arch, num_classes)`` is a fresh ``nn.Module`` mapping a batch of ``input_size``
    images to (batch, num_classes) finite logits; the same seed builds the same weights."""
    where = _where(space)
    batch = batch if batch is not None else space_batch(space, num_classes=num_classes)
    torch.manual_seed(0)
    model = space.build(arch, num_classes=num_classes)
    assert isinstance(model, nn.Module), f"{where}.build() must return an nn.Module"
    torch.manual_seed(0)
    twin = space.build(arch, num_classes=num_classes)
    assert model is not twin, f"{where}.build() must return a fresh module each call"
    a, b = model.state_dict(), twin.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), \
        f"{where}.build() gives different weights for the same torch seed (use the global RNG)"
    model.train()
    with torch.no_grad():
        out = model(batch.inputs)
    assert isinstance(out, torch.Tensor), \
        f"{where}: the network must return a logits tensor, got {type(out).__name__}"
    assert tuple(out.shape) == (len(batch), num_classes), \
        f"{where}: logits have shape {tuple(out.shape)} for a batch of {len(batch)} " \
        f"{tuple(space.input_size)} images, expected ({len(batch)}, {num_classes})"
    assert torch.isfinite(out).all(), f"{where}: the fresh network gives non-finite logits"
    return model


def check_proxies(space: SearchSpace, archs: Sequence[Mapping[str, Any]],
                  proxies: Sequence[str | Proxy] | None = None, batch: Batch | None = None,
                  seed: int = 0) -> dict[str, dict[str, ScoreOutcome]]:
    """Every proxy scores every arch: a finite score or a recorded failure whose reason names
    the proxy, never an exception. Returns ``{proxy: {key: outcome}}``."""
    where = _where(space)
    batch = batch if batch is not None else space_batch(space)
    table: dict[str, dict[str, ScoreOutcome]] = {}
    for p in proxies if proxies is not None else default_proxies():
        proxy = get_proxy(p) if isinstance(p, str) else p
        samples = getattr(proxy, "samples", None)
        if isinstance(samples, int) and samples > len(batch):
            # a proxy that reads its first `samples` images (swap, meco) at the kit's batch size
            proxy = type(proxy)(**{**proxy.get_params(), "samples": len(batch)})
        row: dict[str, ScoreOutcome] = {}
        for arch in archs:
            key = space.key(arch)
            try:
                outcome = score_network(space, proxy, arch, batch, seed)
            except Exception as exc:
                raise AssertionError(
                    f"{where}: proxy {proxy.name} raised {type(exc).__name__} on {key}: {exc} "
                    f"(zcnas' scorer records only NaN/inf and out-of-memory, so a search on "
                    f"this space would crash)"
                ) from exc
            assert outcome.ok or proxy.name in (outcome.reason or ""), \
                f"{where}: the failure of {proxy.name} on {key} does not name it: {outcome.reason}"
            row[key] = outcome
        table[proxy.name] = row
    return table


def check_space(space: SearchSpace | str, *, n: int = 3,
                proxies: Sequence[str | Proxy] | None = None, batch: Batch | None = None,
                small: SearchSpace | None = None,
                seed: int = 0) -> dict[str, dict[str, ScoreOutcome]]:
    """Run every conformance check on ``space`` (an instance or a registered name).

    ``small`` (default ``space``) is the instance that builds and scores the ``n`` sampled
    networks; it must give the same keys. ``proxies`` defaults to :func:`default_proxies`;
    ``batch`` to :func:`space_batch` (8 images). Raises ``AssertionError`` naming the first
    broken rule; returns the proxy table ``{proxy: {key: outcome}}``.
    """
    space = get_space(space) if isinstance(space, str) else space
    small = small if small is not None else space
    assert isinstance(space, SearchSpace), f"{space!r} must subclass zcnas.spaces.SearchSpace"
    assert type(small) is type(space), \
        f"small must be an instance of {type(space).__name__}, got {type(small).__name__}"
    check_size(space)
    archs = check_sample(space, n, seed)
    assert [small.key(a) for a in archs] == [space.key(a) for a in archs], \
        f"{_where(space)}: the small instance keys the sampled archs differently"
    check_keys(space, archs)
    check_invalid(space, archs[0], seed)
    check_mutations(space, archs, seed)
    check_build(small, archs[0])
    return check_proxies(small, archs, proxies, batch, seed)


if pytest is not None:

    class SpaceTestCase:
        """pytest base class: subclass it as ``Test<Something>`` and override ``space``.

        Override ``small_space`` to build and score a cheaper instance, ``proxies`` to choose
        the proxies (default :func:`default_proxies`), ``batch`` for your own data, and ``n``
        for the number of sampled architectures (default 3).
        """

        @pytest.fixture
        def space(self) -> SearchSpace:
            pytest.fail("override the `space` fixture of your SpaceTestCase subclass")

        @pytest.fixture
        def small_space(self, space: SearchSpace) -> SearchSpace:
            return space

        @pytest.fixture
        def proxies(self) -> list[str]:
            return default_proxies()

        @pytest.fixture
        def batch(self, small_space: SearchSpace) -> Batch:
            return space_batch(small_space)

        @pytest.fixture
        def n(self) -> int:
            return 3

        @pytest.fixture
        def archs(self, space: SearchSpace, n: int) -> list[Arch]:
            return check_sample(space, n)

        def test_size(self, space: SearchSpace) -> None:
            check_size(space)

        def test_sample(self, space: SearchSpace, n: int) -> None:
            check_sample(space, n)

        def test_key_parse_round_trip(self, space: SearchSpace, archs: list[Arch]) -> None:
            check_keys(space, archs)

        def test_invalid_encodings(self, space: SearchSpace, archs: list[Arch]) -> None:
            check_invalid(space, archs[0])

        def test_mutate_and_neighbours(self, space: SearchSpace, archs: list[Arch]) -> None:
            check_mutations(space, archs)

        def test_build(self, small_space: SearchSpace, archs: list[Arch]) -> None:
            check_build(small_space, archs[0])

        def test_proxies_score_the_networks(self, small_space: SearchSpace, archs: list[Arch],
                                            proxies: list[str], batch: Batch) -> None:
            check_proxies(small_space, archs, proxies, batch)
