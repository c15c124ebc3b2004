"""Tests of the example plugin's proxies: their definitions, the zcnas contract, and the
entry-point registration."""

from __future__ import annotations

import csv
from importlib import metadata
import math
import os

import numpy as np
import pytest
from scipy.stats import spearmanr
import torch
from torch import nn
from zcnas import Batch
from zcnas import Proxy
from zcnas import get_proxy
from zcnas import list_proxies
from zcnas import load_batch
from zcnas import score
from zcnas.data import data_dir
from zcnas.scoring import score_record

from zcnas_example import EpeNasProxy
from zcnas_example import L2NormProxy


try:  # the conformance kit, where this zcnas has it
    from zcnas.testing import check_proxy
except ImportError:
    check_proxy = None

SMALL = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|skip_connect~2|"
DISCONNECTED = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
PROXIES = [L2NormProxy, EpeNasProxy]


@pytest.fixture(scope="module")
def batch() -> Batch:
    return load_batch("synthetic", batch_size=8, seed=0)


# -- the zcnas proxy contract (own checks; the conformance kit too when present) -------------
@pytest.mark.parametrize("cls", PROXIES)
def test_contract(cls: type[Proxy], batch: Batch) -> None:
    proxy = cls()
    assert isinstance(proxy, Proxy)
    assert proxy.direction in ("maximize", "minimize")
    assert isinstance(proxy.version, str) and proxy.name == cls.name
    assert cls(**proxy.get_params()).get_params() == proxy.get_params()
    a = score("nb201", proxy, SMALL, batch, seed=0)
    assert math.isfinite(a)
    assert score("nb201", proxy, SMALL, batch, seed=0) == a  # reproducible
    if check_proxy is not None:
        check_proxy(proxy)


@pytest.mark.parametrize("cls", PROXIES)
def test_leaves_no_gradients_behind(cls: type[Proxy], batch: Batch) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cls().compute(model, batch)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


# -- l2_norm ----------------------------------------------------------------------------------
def test_l2_norm_definition() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 1, bias=True), nn.BatchNorm2d(2), nn.Flatten(),
                          nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.fill_(1.0)   # ||.|| = sqrt(6)
        model[0].bias.fill_(100.0)   # biases are not counted
        model[1].weight.fill_(50.0)  # neither is BatchNorm
        model[3].weight.fill_(2.0)   # ||.|| = sqrt(24 * 4)
    batch = Batch(torch.zeros(2, 3, 2, 2), torch.tensor([0, 1]), 3, "test")
    assert L2NormProxy().compute(model, batch) == pytest.approx(math.sqrt(6) + math.sqrt(96))


def test_l2_norm_is_data_free(batch: Batch) -> None:
    other = load_batch("synthetic", batch_size=8, seed=7)
    assert score("nb201", L2NormProxy(), SMALL, batch) == score("nb201", L2NormProxy(), SMALL, other)


def test_l2_norm_agrees_with_nas_bench_suite_zero() -> None:
    path = data_dir() / "nb201" / "nb201_zc_proxies_cifar10.csv"
    if not path.is_file():
        pytest.skip(f"needs the shared NB-Suite-Zero table at {path} (set ZCNAS_DATA)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    picked = [rows[int(i)] for i in rng.choice(len(rows), 20, replace=False)]
    batch = load_batch("synthetic", batch_size=2)
    ours = np.array([score("nb201", L2NormProxy(), r["arch"], batch) for r in picked])
    theirs = np.array([float(r["l2_norm"]) for r in picked])
    assert np.median(np.abs(ours / theirs - 1)) < 0.01  # same definition and init scale
    assert spearmanr(ours, theirs)[0] > 0.85  # two runs of NB-Suite-Zero agree to 0.95


# -- epe_nas ----------------------------------------------------------------------------------
def reference_epe(jacobians: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """EPE-NAS written out again with numpy, class by class."""
    scores = []
    for c in sorted(set(labels.tolist())):
        rows = jacobians[labels == c]
        if len(rows) == 1:
            if n_classes > 100:
                continue
            scores.append(np.log(1 + 1e-5))
            continue
        s = np.sum(np.log(np.abs(np.corrcoef(rows)) + 1e-5))
        scores.append(s / len(rows) if n_classes > 100 else s)
    if n_classes <= 100:
        return float(np.sum(np.abs(scores)))
    return float(sum(abs(a - b) for a in scores for b in scores) / len(scores))


@pytest.mark.parametrize("n_classes", [5, 150])
def test_epe_nas_matches_a_numpy_reference(n_classes: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, n_classes))
    x = torch.randn(11, 3, 6, 6)
    y = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 4])  # class 3 and 4 have one sample
    batch = Batch(x, y, n_classes, "test")
    xg = x.clone().requires_grad_(True)
    model(xg).sum().backward()
    expected = reference_epe(xg.grad.reshape(11, -1).double().numpy(), y.numpy(), n_classes)
    assert EpeNasProxy().compute(model, batch) == pytest.approx(expected, rel=1e-9)


def test_epe_nas_of_a_disconnected_cell_is_a_recorded_failure(batch: Batch) -> None:
    record = score_record("nb201", EpeNasProxy(), DISCONNECTED, batch)
    assert record.status == "failed"
    assert "non-finite" in (record.reason or "")


def test_epe_nas_depends_on_the_data(batch: Batch) -> None:
    other = load_batch("synthetic", batch_size=8, seed=7)
    assert score("nb201", EpeNasProxy(), SMALL, batch) != score("nb201", EpeNasProxy(), SMALL, other)


# -- registration through the entry points ----------------------------------------------------
def _installed() -> bool:
    try:
        metadata.distribution("zcnas-example")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_registered_through_entry_points() -> None:
    if not _installed():
        reason = "zcnas-example is not installed: pip install ./plugins/zcnas-example"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert {"l2_norm", "epe_nas"} <= set(list_proxies())
    assert type(get_proxy("l2_norm")) is L2NormProxy
    assert type(get_proxy("epe_nas")) is EpeNasProxy
