"""AZ-NAS components against a slow re-derivation (numpy eigen-decomposition, full Jacobians)
on a tiny staged network, plus the shared-cache contract and NB201 behaviour."""

from __future__ import annotations

import math

from conftest import BEST_C10
from conftest import RESNET
from conftest import build
from conftest import he_normal_init_by_hand
import numpy as np
import pytest
import torch
from torch import nn

import zcnas
from zcnas.data import Batch
from zcnas.data import synthetic_batch
from zcnas.exceptions import ScoreError
from zcnas.proxies import _aznas
from zcnas.scoring import compute_score


class Tiny(nn.Module):
    """stem + cells like an NB201 network: two same-size blocks, one stride-2 block, one skip."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
        self.cells = nn.Sequential(
            nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)),
            nn.Sequential(nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6)),
            nn.Identity(),
        )
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)).mean((2, 3)))


def entropy_numpy(feat: np.ndarray) -> float:
    b, c, h, w = feat.shape
    x = feat.transpose(0, 2, 3, 1).reshape(-1, c)
    s = np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True))
    p = s / s.sum()
    return float(np.sum(-p * np.log(p + 1e-8)))


def reference(model: nn.Module, batch: Batch) -> dict[str, float]:
    """Re-derivation with the same RNG draws in the same order: He-normal init module by
    module, a Gaussian batch, then one Rademacher tensor per block from the last block down;
    each block's full Jacobian by torch.autograd.functional.jacobian, G_in = J^T G_out
    explicitly, M by an explicit sum over positions, and numpy's SVD."""
    he_normal_init_by_hand(model)
    model.train()
    x = torch.randn(batch.inputs.shape, dtype=batch.inputs.dtype)
    feats = [model.stem(x)]
    for cell in model.cells:
        feats.append(cell(feats[-1]))
    ent = [entropy_numpy(f.detach().double().numpy()) for f in feats]
    terms = []
    for i in reversed(range(1, len(feats))):
        f_in = feats[i - 1].detach()
        g_out = torch.bernoulli(torch.full_like(feats[i], 0.5)) * 2 - 1
        jac = torch.autograd.functional.jacobian(model.cells[i - 1], f_in)  # out x in
        jac = jac.reshape(g_out.numel(), f_in.numel()).double()
        g_in = (jac.T @ g_out.reshape(-1).double()).reshape(f_in.shape)
        if g_in.shape == g_out.shape and torch.allclose(g_in, g_out.double()):
            terms.append(-math.inf)
            continue
        bo, co, ho, wo = g_out.shape
        stride = g_in.shape[2] // ho
        mat = np.zeros((g_in.shape[1] * stride * stride, co))
        gi, go = g_in.numpy(), g_out.double().numpy()
        for n in range(bo):
            for y in range(ho):
                for xx in range(wo):
                    # pixel-unshuffle order: channel-major, then the stride x stride offsets
                    vec = gi[n, :, y * stride:(y + 1) * stride, xx * stride:(xx + 1) * stride]
                    mat += np.outer(vec.reshape(-1), go[n, :, y, xx])
        s = np.linalg.svd(mat / (bo * ho * wo), compute_uv=False).max()
        terms.append(-s - 1 / (s + 1e-6) + 2)
    return {"expressivity": sum(ent), "progressivity": min(np.diff(ent)),
            "trainability": float(np.mean(terms))}


def test_components_match_the_re_derivation() -> None:
    batch = synthetic_batch(5, seed=1, num_classes=3, image_size=6)
    torch.manual_seed(3)
    got = _aznas.compute_components(Tiny(), batch)
    torch.manual_seed(3)
    want = reference(Tiny(), batch)
    # the identity block makes trainability -inf, as the authors mark it
    assert got["trainability"] == want["trainability"] == -math.inf
    for key in ("expressivity", "progressivity"):
        assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-9), key


def test_trainability_without_identity_block_matches() -> None:
    batch = synthetic_batch(5, seed=2, num_classes=3, image_size=6)
    torch.manual_seed(4)
    model = Tiny()
    model.cells = model.cells[:2]
    got = _aznas.compute_components(model, batch)
    torch.manual_seed(4)
    ref_model = Tiny()
    ref_model.cells = ref_model.cells[:2]
    want = reference(ref_model, batch)
    assert math.isfinite(got["trainability"])
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-9), key


def test_isotropic_features_reach_the_maximum_entropy() -> None:
    """Whitened features (all covariance eigenvalues equal) give log C; rank one gives ~0."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 8))
    x = (x - x.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False, bias=True))).T
    iso = torch.from_numpy(x).reshape(10, 20, 20, 8).permute(0, 3, 1, 2)
    assert _aznas.isotropy_entropy(iso) == pytest.approx(math.log(8), rel=1e-6)
    rank1 = torch.from_numpy(rng.normal(size=(10, 1, 5, 5))).repeat(1, 8, 1, 1)
    assert _aznas.isotropy_entropy(rank1) < 1e-4


def test_components_share_one_computation_and_are_data_free(batch16: Batch,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _aznas.compute_components
    monkeypatch.setattr(_aznas, "compute_components", lambda m, b: calls.append(1) or real(m, b))
    _aznas._CACHE.clear()
    values = {name: compute_score(zcnas.get_space("nb201"), zcnas.get_proxy(name),
                                  zcnas.get_space("nb201").parse(RESNET), batch16, 0)
              for name in ("az_expressivity", "az_progressivity", "az_trainability")}
    assert len(calls) == 1
    other = Batch(torch.randn(batch16.inputs.shape), batch16.targets, 10, "noise")
    again = compute_score(zcnas.get_space("nb201"), zcnas.get_proxy("az_expressivity"),
                          zcnas.get_space("nb201").parse(RESNET), other, 0)
    assert again == values["az_expressivity"] and len(calls) == 1
    # another seed or another arch is a different computation
    compute_score(zcnas.get_space("nb201"), zcnas.get_proxy("az_expressivity"),
                  zcnas.get_space("nb201").parse(RESNET), batch16, 1)
    compute_score(zcnas.get_space("nb201"), zcnas.get_proxy("az_expressivity"),
                  zcnas.get_space("nb201").parse(BEST_C10), batch16, 0)
    assert len(calls) == 3


def test_identity_cell_is_a_failed_trainability_score(batch16: Batch) -> None:
    # node 3 = skip(node 0); nodes 1, 2 only reach node 3 through `none`: the cell is identity
    identity = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
    record = zcnas.score_record("nb201", "az_trainability", identity, batch16)
    assert record.status == "failed" and "-inf" in (record.reason or "")
    assert zcnas.score_record("nb201", "az_expressivity", identity, batch16).status == "complete"


def test_complexity_is_the_nb201_flops() -> None:
    assert round(compute_score(
        zcnas.get_space("nb201"), zcnas.get_proxy("az_complexity"),
        zcnas.get_space("nb201").parse(BEST_C10), synthetic_batch(2), 0), 2) == 153.27


def test_model_without_stages_names_the_fix() -> None:
    with pytest.raises(ScoreError, match="stem"):
        zcnas.get_proxy("az_expressivity").compute(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)),
                                                   synthetic_batch(4, image_size=2, num_classes=3))


def test_best_cell_beats_a_weak_one_on_expressivity(batch16: Batch) -> None:
    weak = "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    proxy = zcnas.get_proxy("az_expressivity")
    assert proxy.compute(build(BEST_C10), batch16) > proxy.compute(build(weak), batch16)
