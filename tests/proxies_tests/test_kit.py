"""The conformance kit accepts a well-behaved plugin proxy and rejects each kind of broken one.

The proxies here are deliberately *not* registered (that would add them to ``list_proxies()``
and so to every parametrised test); they set ``name`` themselves, as an entry-point plugin does.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from zcnas.data import Batch
from zcnas.data import synthetic_batch
from zcnas.proxies import Proxy
from zcnas.testing import ProxyTestCase
from zcnas.testing import check_class_attributes
from zcnas.testing import check_direction
from zcnas.testing import check_params_round_trip
from zcnas.testing import check_proxy


class ConvWeightNorm(Proxy):
    """Data-free: sum over Conv2d weights of ||W||_2 times ``scale``."""

    name = "conv_weight_norm"
    paper = "test fixture"
    uses_data = False
    uses_labels = False

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = scale

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return self.scale * sum(float(m.weight.detach().norm()) for m in model.modules()
                                if isinstance(m, nn.Conv2d))


class LogitMean(Proxy):
    """Label-free: mean logit on the batch."""

    name = "logit_mean"
    paper = "test fixture"
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        with torch.no_grad():
            return float(model(batch.inputs).mean())


@pytest.fixture(scope="module")
def batch() -> Batch:
    return synthetic_batch(8, seed=0)


def test_good_proxies_pass(batch: Batch) -> None:
    for proxy in (ConvWeightNorm(scale=2.0), LogitMean()):
        scores = check_proxy(proxy, batch)
        assert len(scores) == 2 and len(set(scores.values())) == 2


class TestPluginAuthorUsage(ProxyTestCase):
    """How a plugin's own test suite reuses the kit."""

    @pytest.fixture
    def proxy(self) -> Proxy:
        return ConvWeightNorm(scale=0.5)

    @pytest.fixture
    def batch(self) -> Batch:
        return synthetic_batch(8, seed=1)


class ReturnsNaN(LogitMean):
    """Broken: NaN."""

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return float("nan")


_counter = itertools.count()


class NotDeterministic(LogitMean):
    """Broken: depends on a global counter."""

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return float(next(_counter))


class ReadsDataButSaysNot(ConvWeightNorm):
    """Broken: declares uses_data=False, reads the inputs."""

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return float(batch.inputs.abs().mean())


class ReadsLabelsButSaysNot(LogitMean):
    """Broken: declares uses_labels=False, reads the targets."""

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return float(batch.targets.float().mean())


class ReturnsTensor(LogitMean):
    """Broken: returns a tensor, not a float."""

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return torch.tensor(1.0)  # type: ignore[return-value]


class LeavesNoGrad(LogitMean):
    """Broken: switches autograd off globally."""

    def compute(self, model: nn.Module, batch: Batch) -> float:
        torch.set_grad_enabled(False)
        return 1.0


@pytest.mark.parametrize(("broken", "message"), [
    (ReturnsNaN(), "gave nan"),
    (NotDeterministic(), "not deterministic"),
    (ReadsDataButSaysNot(), "uses_data=False"),
    (ReadsLabelsButSaysNot(), "uses_labels=False"),
    (ReturnsTensor(), "must return a float"),
    (LeavesNoGrad(), "grad mode"),
])
def test_broken_proxies_are_rejected(broken: Proxy, message: str, batch: Batch) -> None:
    try:
        with pytest.raises(AssertionError, match=message):
            check_proxy(broken, batch)
    finally:
        torch.set_grad_enabled(True)


def test_params_that_do_not_round_trip_are_rejected() -> None:
    class Doubles(ConvWeightNorm):
        """Broken: stores a transformed hyper-parameter."""

        def __init__(self, *, scale: float = 1.0) -> None:
            self.scale = scale * 2

    with pytest.raises(AssertionError, match="round-trip"):
        check_params_round_trip(Doubles(scale=1.0))


def test_bad_class_attributes_are_rejected() -> None:
    class NoDirection(LogitMean):
        """Broken direction."""

        direction = "higher"  # type: ignore[assignment]

    class NoPaper(LogitMean):
        """No reference."""

        paper = ""

    class LabelsWithoutData(LogitMean):
        """Inconsistent flags."""

        uses_data = False
        uses_labels = True

    class NoDoc(LogitMean):
        pass

    for cls, message in ((NoDirection, "direction"), (NoPaper, "paper"),
                         (LabelsWithoutData, "labels are data"), (NoDoc, "docstring")):
        with pytest.raises(AssertionError, match=message):
            check_class_attributes(cls)


def test_direction_check_catches_a_flipped_sign(batch: Batch) -> None:
    big = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"  # noqa: E501
    small = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    good, bad = check_direction(ConvWeightNorm(), big, small, batch)
    assert good > bad

    class Flipped(ConvWeightNorm):
        """Claims lower is better."""

        direction = "minimize"

    with pytest.raises(AssertionError, match="wrong order"):
        check_direction(Flipped(), big, small, batch)
