"""LGA (label-gradient alignment) on real NB201 nets and a real CIFAR-10 batch."""

from __future__ import annotations

import math

from conftest import BEST_C10
from conftest import DISCONNECTED
from conftest import RESNET
from conftest import WEAK
from conftest import build
import numpy as np
import pytest
import torch

from proxies_tests import roundoff
import zcnas
from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._lga import centred_alignment
from zcnas.proxies._lga import label_kernel
from zcnas.proxies._persample import all_parameters


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
def test_vectorised_equals_loop_float64(arch: str, batch16: Batch) -> None:
    proxy = zcnas.get_proxy("lga")
    b64 = Batch(batch16.inputs[:8].double(), batch16.targets[:8], 10, "f64")
    fast = proxy.compute(build(arch, torch.float64), b64)
    assert fast == pytest.approx(proxy.reference(build(arch, torch.float64), b64), rel=1e-8)


def check_lga_float32(arch: str, batch: Batch) -> None:
    """The float32 NTKs (vmap and loop) within the error-model bound of the exact NTK of the
    function each evaluated, and the scores within the bound that follows (see roundoff)."""
    def make(dtype: torch.dtype) -> torch.nn.Module:
        return build(arch, dtype)

    check = roundoff.check_gram_paths(make, batch, names=all_parameters(make(torch.float32)),
                                      objective="logit_sum")
    check.report.assert_consistent(1e-2)  # as GRAM_MAX_RELATIVE in test_gradalign.py
    proxy = zcnas.get_proxy("lga")
    values = {"vmap": proxy.compute(make(torch.float32), batch),
              "loop": proxy.reference(make(torch.float32), batch)}
    labels = label_kernel(batch.targets)
    for key, value in values.items():
        assert -1.0 <= value <= 1.0
        exact = centred_alignment(check.exact[key], labels)
        assert abs(value - exact) <= check.score_bound(key, "lga"), key


def test_vectorised_equals_loop_float32(batch16: Batch) -> None:
    check_lga_float32(WEAK, roundoff.first_samples(batch16, 8))


@pytest.mark.slow
@pytest.mark.parametrize("arch", [BEST_C10, WEAK])
def test_vectorised_equals_loop_float32_nets(arch: str, batch16: Batch) -> None:
    check_lga_float32(arch, batch16)


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
