"""GradAlign (I: alignment, II: Gram log-det) against a direct loop implementation on real NB201
nets and a real CIFAR-10 batch.

The reference builds the N x m matrix of per-sample gradients with the batch-1 loop and applies
the definitions directly (unit vectors, their mean, cosines; slogdet of U U^T + eps I); the proxy
goes through vmap and the layer-wise Gram matrix. float64 must agree to 1e-8; float32 to 2e-3
(single-sample BatchNorm amplifies float32 rounding; see test_gradsign.py).
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

import zcnas
from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._gradalign import alignment_from_gram
from zcnas.proxies._gradalign import logdet_from_gram
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
@pytest.mark.parametrize("dtype, rel", [(torch.float64, 1e-8), (torch.float32, 2e-3)])
def test_vectorised_equals_loop(arch: str, dtype: torch.dtype, rel: float, batch16: Batch,
                                batch8_f64: Batch) -> None:
    batch = batch8_f64 if dtype == torch.float64 else batch16
    for variant in VARIANTS:
        proxy = zcnas.get_proxy("gradalign", variant=variant)
        fast = proxy.compute(build(arch, dtype), batch)
        slow = proxy.reference(build(arch, dtype), batch)
        assert math.isfinite(fast)
        assert fast == pytest.approx(slow, rel=rel, abs=rel), variant


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
