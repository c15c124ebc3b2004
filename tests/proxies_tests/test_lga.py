"""LGA (label-gradient alignment) on real NB201 nets and a real CIFAR-10 batch."""

from __future__ import annotations

import math

from conftest import BEST_C10
from conftest import DISCONNECTED
from conftest import RESNET
from conftest import WEAK
import numpy as np
import pytest
import torch

import zcnas
from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._lga import centred_alignment
from zcnas.proxies._lga import label_kernel


@pytest.fixture(scope="module")
def batch16(shared_data) -> Batch:  # noqa: ANN001
    return zcnas.load_batch("cifar10", 16, seed=0)


def build(arch: str, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.nn.Module:
    space = zcnas.get_space("nb201")
    torch.manual_seed(seed)
    model = space.build(space.parse(arch)).to(dtype)
    model.train()
    return model


def test_centred_alignment_is_pearson_of_entries_and_label_coding_free() -> None:
    rng = np.random.default_rng(0)
    targets = torch.from_numpy(rng.integers(0, 10, 12))
    a = rng.normal(size=(12, 30))
    kernel = torch.from_numpy(a @ a.T)
    y01 = label_kernel(targets)
    expected = np.corrcoef(kernel.numpy().ravel(), y01.numpy().ravel())[0, 1]
    assert centred_alignment(kernel, y01) == pytest.approx(expected, rel=1e-12)
    y_simplex = torch.where(y01 > 0, 1.0, -1.0 / 9).double()  # 1 / -1/(C-1) coding
    assert centred_alignment(kernel, y_simplex) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(centred_alignment(torch.ones(12, 12), y01))


@pytest.mark.parametrize("arch", [BEST_C10, WEAK])
def test_vectorised_equals_loop(arch: str, batch16: Batch) -> None:
    proxy = zcnas.get_proxy("lga")
    b64 = Batch(batch16.inputs[:8].double(), batch16.targets[:8], 10, "f64")
    fast = proxy.compute(build(arch, torch.float64), b64)
    assert fast == pytest.approx(proxy.reference(build(arch, torch.float64), b64), rel=1e-8)
    fast = proxy.compute(build(arch), batch16)
    assert fast == pytest.approx(proxy.reference(build(arch), batch16), rel=2e-3, abs=2e-3)
    assert -1.0 <= fast <= 1.0


def test_train_steps_change_the_model_and_score_deterministically(batch16: Batch) -> None:
    proxy = zcnas.get_proxy("lga", train_steps=3)
    model = build(RESNET)
    before = [p.detach().clone() for p in model.parameters()]
    trained = proxy.compute(model, batch16)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert trained == proxy.compute(build(RESNET), batch16)
    at_init = zcnas.get_proxy("lga").compute(build(RESNET), batch16)
    assert math.isfinite(trained) and trained != at_init


def test_disconnected_cell_fails_cleanly(batch16: Batch) -> None:
    record = zcnas.score_record("nb201", "lga", DISCONNECTED, batch16)
    assert record.status == "failed"


def test_bad_parameters_name_the_fix() -> None:
    with pytest.raises(ZcnasError, match="train_steps"):
        zcnas.get_proxy("lga", train_steps=-1)
    with pytest.raises(ZcnasError, match="lr"):
        zcnas.get_proxy("lga", lr=0)
    assert zcnas.get_proxy("lga").get_params() == {"train_steps": 0, "lr": 0.1, "chunk_size": None}
