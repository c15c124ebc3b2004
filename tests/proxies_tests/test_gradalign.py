"""GradAlign (I: alignment, II: Gram log-det) against a direct loop implementation on real NB201
nets and a real CIFAR-10 batch.

The reference builds the N x m matrix of per-sample gradients with the batch-1 loop and applies
the definitions directly (unit vectors, their mean, cosines; slogdet of U U^T + eps I); the proxy
goes through vmap and the layer-wise Gram matrix. float64 must agree to 1e-8. float32 has no
fixed tolerance that holds on every CPU (a ReLU input within rounding of 0 moves a sample's
gradient by ~2%, see test_gradsign.py): each float32 Gram matrix must lie within the entrywise
bound ``roundoff`` derives from the float32 error model around the exact Gram matrix of the
function that path evaluated, and each score within the bound that follows from it.
"""

from __future__ import annotations

import math

from conftest import BEST_C10
from conftest import DISCONNECTED
from conftest import RESNET
from conftest import WEAK
from conftest import as_dtype
from conftest import build
from conftest import oom_above
import pytest
import torch

from proxies_tests import roundoff
import zcnas
from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._gradalign import alignment_from_gram
from zcnas.proxies._gradalign import logdet_from_gram
from zcnas.proxies._persample import conv_linear_weights
from zcnas.proxies._persample import per_sample_gram


NETS = [BEST_C10, WEAK, RESNET]
VARIANTS = ["gram", "alignment"]


def test_gram_formulas_match_definitions() -> None:
    g = torch.randn(7, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g[3] = 0.0  # a sample without gradient
    gram = g @ g.T
    live = g[[i for i in range(7) if i != 3]]
    units = live / live.norm(dim=1, keepdim=True)
    mean = units.mean(0)
    cosines = units @ mean / mean.norm()
    assert alignment_from_gram(gram) == pytest.approx(float(cosines.mean()), rel=1e-12)
    full = torch.zeros(7, 50, dtype=torch.float64)
    full[[0, 1, 2, 4, 5, 6]] = units
    expected = torch.linalg.slogdet(full @ full.T + 1e-3 * torch.eye(7, dtype=torch.float64))[1]
    assert logdet_from_gram(gram, 1e-3) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("arch", NETS)
def test_vectorised_equals_loop_float64(arch: str, batch8_f64: Batch) -> None:
    for variant in VARIANTS:
        proxy = zcnas.get_proxy("gradalign", variant=variant)
        fast = proxy.compute(build(arch, torch.float64), batch8_f64)
        slow = proxy.reference(build(arch, torch.float64), batch8_f64)
        assert math.isfinite(fast)
        assert fast == pytest.approx(slow, rel=1e-8, abs=1e-8), variant


# The entrywise Gram bound is ~K_SMOOTH x (relative float32 error of a gradient, ~1e-5) of the
# diagonal; 1% keeps the check from passing vacuously.
GRAM_MAX_RELATIVE = 1e-2


def check_gradalign_float32(arch: str, batch: Batch) -> roundoff.GramCheck:
    def make(dtype: torch.dtype) -> torch.nn.Module:
        return build(arch, dtype)

    check = roundoff.check_gram_paths(make, batch, names=conv_linear_weights(make(torch.float32)),
                                      objective="ce")
    check.report.assert_consistent(GRAM_MAX_RELATIVE)
    for variant in VARIANTS:
        proxy = zcnas.get_proxy("gradalign", variant=variant)
        values = {"vmap": proxy.compute(make(torch.float32), batch),
                  "loop": proxy.reference(make(torch.float32), batch)}
        for key, value in values.items():
            exact = (logdet_from_gram(check.exact[key], proxy.eps) if variant == "gram"
                     else alignment_from_gram(check.exact[key]))
            assert abs(value - exact) <= check.score_bound(key, variant, proxy.eps), (variant, key)
    return check


def test_vectorised_equals_loop_float32(batch16: Batch) -> None:
    check_gradalign_float32(RESNET, roundoff.first_samples(batch16, 8))


@pytest.mark.slow
@pytest.mark.parametrize("arch", NETS)
def test_vectorised_equals_loop_float32_nets(arch: str, batch16: Batch) -> None:
    check_gradalign_float32(arch, batch16)


def test_float32_gram_check_catches_batch_statistics(batch16: Batch) -> None:
    from proxies_tests.test_gradsign import batch_statistics_path

    batch = roundoff.first_samples(batch16, 8)

    def make(dtype: torch.dtype) -> torch.nn.Module:
        return build(WEAK, dtype)

    bug = batch_statistics_path(make(torch.float32), batch)
    ref = roundoff.reference(make, batch, {"bug": bug})
    flat = torch.cat(list(bug.grads.values()), dim=1)
    report = roundoff.check_gram(ref, {"bug": flat @ flat.T})
    assert report.worst["bug"] > 100  # far outside the rounding bound


def test_chunked_equals_unchunked_and_recomputes_blocks(
        batch16: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = as_dtype(batch16, torch.float64)
    whole = per_sample_gram(build(WEAK, torch.float64), batch)
    calls = oom_above(monkeypatch, len(batch))  # never fails: counts the chunk passes
    chunked = per_sample_gram(build(WEAK, torch.float64), batch, chunk_size=6)  # 6, 6, 4
    assert len(calls) == 6  # c(c+1)/2 chunk passes for c = 3
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=0)
    assert torch.equal(chunked, chunked.T)


def test_out_of_memory_halves_the_chunk(batch16: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = zcnas.get_proxy("gradalign", chunk_size=4)
    expected = proxy.compute(build(WEAK), batch16)
    seen = oom_above(monkeypatch, 4)
    got = zcnas.get_proxy("gradalign").compute(build(WEAK), batch16)
    assert seen[:3] == [16, 8, 4] and max(seen[3:]) == 4
    assert got == pytest.approx(expected, rel=1e-12)


def test_finite_deterministic_and_directions(batch16: Batch) -> None:
    for variant, direction in (("gram", "maximize"), ("alignment", "minimize")):
        proxy = zcnas.get_proxy("gradalign", variant=variant)
        assert proxy.direction == direction
        a = zcnas.score("nb201", proxy, RESNET, batch16, seed=1)
        b = zcnas.score("nb201", proxy, RESNET, batch16, seed=1)
        assert a == b and math.isfinite(a)
    assert zcnas.get_proxy("gradalign").get_params() == {
        "variant": "gram", "eps": 1e-3, "chunk_size": None,
    }


def test_disconnected_cell(batch16: Batch) -> None:
    # every per-sample gradient is zero: the Gram log-det is N log(eps), the lowest possible;
    # the alignment is undefined and becomes a failed score record
    gram = zcnas.score("nb201", "gradalign", DISCONNECTED, batch16)
    assert gram == pytest.approx(16 * math.log(1e-3))
    record = zcnas.score_record("nb201", zcnas.get_proxy("gradalign", variant="alignment"),
                                DISCONNECTED, batch16)
    assert record.status == "failed" and "non-finite" in (record.reason or "")


def test_known_order(shared_data) -> None:  # noqa: ANN001
    batch = zcnas.load_batch("cifar10", 32, seed=0)
    pool = "|avg_pool_3x3~0|+|avg_pool_3x3~0|none~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"
    for variant in VARIANTS:
        proxy = zcnas.get_proxy("gradalign", variant=variant)
        sign = 1.0 if proxy.direction == "maximize" else -1.0
        best = sign * zcnas.score("nb201", proxy, BEST_C10, batch)
        assert best > sign * zcnas.score("nb201", proxy, WEAK, batch), variant
        assert best > sign * zcnas.score("nb201", proxy, pool, batch), variant


def test_bad_parameters_name_the_fix() -> None:
    with pytest.raises(ZcnasError, match="variant must be one of gram, alignment"):
        zcnas.get_proxy("gradalign", variant="cosine")
    with pytest.raises(ZcnasError, match="eps must be a positive number"):
        zcnas.get_proxy("gradalign", eps=0)
    with pytest.raises(ZcnasError, match="chunk_size"):
        zcnas.get_proxy("gradalign", chunk_size=-1)
