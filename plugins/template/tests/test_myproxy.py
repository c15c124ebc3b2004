"""Tests for myproxy: the zcnas contract, a known value, and the entry point."""

from __future__ import annotations

from importlib import metadata
import math
import os

import pytest
import torch
from torch import nn
from zcnas import Batch
from zcnas import get_proxy
from zcnas import load_batch
from zcnas import score

from zcnas_myproxy import MyProxy


ARCH = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_contract() -> None:
    """What zcnas relies on: a finite float, the same for the same seed, params round trip."""
    try:
        from zcnas.testing import check_proxy
    except ImportError:  # older zcnas without the conformance kit: the same checks by hand
        check_proxy = None
    proxy = MyProxy(log=True)
    if check_proxy is not None:
        check_proxy(proxy)
    batch = load_batch("synthetic", batch_size=8)
    value = score("nb201", proxy, ARCH, batch, seed=0)
    assert math.isfinite(value)
    assert score("nb201", proxy, ARCH, batch, seed=0) == value
    assert MyProxy(**proxy.get_params()).get_params() == {"log": True}


def test_known_value() -> None:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    batch = Batch(torch.tensor([[1.0], [3.0]]), torch.tensor([0, 0]), 1, "test")
    assert MyProxy().compute(model, batch) == pytest.approx(2.0 * math.sqrt(2))  # std of 2, 6
    assert MyProxy(log=True).compute(model, batch) == pytest.approx(math.log(2.0 * math.sqrt(2)))


def test_entry_point() -> None:
    try:
        metadata.distribution("zcnas-myproxy")
    except metadata.PackageNotFoundError:
        reason = "zcnas-myproxy is not installed: pip install ."
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert type(get_proxy("myproxy")) is MyProxy
