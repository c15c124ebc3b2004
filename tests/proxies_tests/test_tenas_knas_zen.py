"""TE-NAS (NTK condition number, linear regions), KNAS and Zen-NAS against independent
computations: full Jacobians by torch.autograd.functional, explicit per-sample loops, Python
sets of patterns, and the BatchNorm running-variance update written out."""

from __future__ import annotations

import math

from conftest import BEST_C10
from conftest import DISCONNECTED
from conftest import build
import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import zcnas
from zcnas.data import Batch
from zcnas.data import synthetic_batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ScoreError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import _tenas
from zcnas.proxies._knas import authors_subset
from zcnas.scoring import compute_score


def tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).double()


def f64(batch: Batch) -> Batch:
    return Batch(batch.inputs.double(), batch.targets, batch.num_classes, batch.source)


# --- TE-NAS NTK ----------------------------------------------------------------------------


def numpy_cond(jac: np.ndarray) -> float:
    eig = np.linalg.eigvalsh(jac @ jac.T)
    return float(eig[-1] / eig[0])


def test_batch_mode_ntk_is_the_full_jacobian_of_the_batched_function() -> None:
    batch = f64(synthetic_batch(6, seed=1, num_classes=3, image_size=5))
    model = tiny()
    names = _tenas.weight_names(model)
    assert names == ["0.weight", "1.weight", "3.weight", "4.weight", "8.weight"]
    base = {n: p.detach() for n, p in model.named_parameters()}
    flat0 = torch.cat([base[n].reshape(-1) for n in names])

    def summed_logits(flat: torch.Tensor) -> torch.Tensor:
        params, start = dict(base), 0
        for n in names:
            k = base[n].numel()
            params[n] = flat[start:start + k].view_as(base[n])
            start += k
        return functional_call(model, params, (batch.inputs,)).sum(1)

    jac = torch.autograd.functional.jacobian(summed_logits, flat0).numpy()  # (N, P)
    got = zcnas.get_proxy("tenas_ntk", mode="batch").compute(tiny(), batch)
    assert got == pytest.approx(numpy_cond(jac), rel=1e-8)


def test_sample_mode_ntk_is_the_per_sample_loop() -> None:
    batch = f64(synthetic_batch(6, seed=2, num_classes=3, image_size=5))
    model = tiny()
    names = _tenas.weight_names(model)
    params = [dict(model.named_parameters())[n] for n in names]
    rows = []
    for i in range(len(batch)):  # each sample alone through the train-mode network
        grads = torch.autograd.grad(model(batch.inputs[i:i + 1]).sum(), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]).numpy())
    got = zcnas.get_proxy("tenas_ntk").compute(tiny(), batch)
    assert got == pytest.approx(numpy_cond(np.stack(rows)), rel=1e-8)


def test_singular_ntk_fails_and_modes_agree_in_order(batch16: Batch) -> None:
    record = zcnas.score_record("nb201", "tenas_ntk", DISCONNECTED, batch16)
    assert record.status == "failed"
    assert _tenas.condition_number(torch.diag(torch.tensor([2.0, 1.0, 0.0]))) == math.inf
    assert _tenas.condition_number(torch.diag(torch.tensor([4.0, 2.0]))) == 2.0
    with pytest.raises(ZcnasError, match="mode"):
        zcnas.get_proxy("tenas_ntk", mode="eval")
    with pytest.raises(DataError, match="at least 2"):
        zcnas.get_proxy("tenas_ntk").compute(build(BEST_C10), Batch(batch16.inputs[:1],
                                                                    batch16.targets[:1], 10, "one"))


# --- TE-NAS linear regions -----------------------------------------------------------------


def test_crops_are_slices_of_batch_images() -> None:
    batch = synthetic_batch(4, seed=3, image_size=8)
    torch.manual_seed(0)
    crops = _tenas.random_crops(batch, 40, 3)
    assert crops.shape == (40, 3, 3, 3)
    x = batch.inputs
    for c in crops:
        assert any(torch.equal(c, x[i, :, r:r + 3, s:s + 3])
                   for i in range(4) for r in range(6) for s in range(6))
    with pytest.raises(DataError, match="crop"):
        _tenas.random_crops(batch, 2, 9)


def test_regions_count_distinct_patterns_over_all_batches() -> None:
    batch = synthetic_batch(4, seed=4, image_size=8, num_classes=3)
    proxy = zcnas.get_proxy("tenas_regions", samples=30, batches=2, crop=3)
    torch.manual_seed(7)
    got = proxy.compute(tiny().float(), batch)
    torch.manual_seed(7)
    model = tiny().float().train()
    patterns = set()
    for _ in range(2):
        crops = _tenas.random_crops(batch, 30, 3)
        outs = []
        hooks = [m.register_forward_hook(lambda _m, _i, o, outs=outs: outs.append(o.detach()))
                 for m in model.modules() if isinstance(m, nn.ReLU)]
        with torch.no_grad():
            model(crops)
        for h in hooks:
            h.remove()
        codes = torch.cat([o.reshape(30, -1) > 0 for o in outs], 1)
        patterns |= {tuple(r) for r in codes.tolist()}
    assert got == len(patterns)
    assert 1 <= got <= 60


# --- KNAS ----------------------------------------------------------------------------------


def test_knas_is_the_mean_of_the_per_sample_gram_matrix() -> None:
    batch = f64(synthetic_batch(5, seed=5, num_classes=3, image_size=5))
    for subset, keep in (("conv_linear", None), ("authors", 100)):
        model = tiny()
        proxy = zcnas.get_proxy("knas", subset=subset, chunk_size=2)
        names = (authors_subset(model) if subset == "authors"
                 else ["0.weight", "3.weight", "8.weight"])
        params = [dict(model.named_parameters())[n] for n in names]
        rows = []
        for i in range(len(batch)):
            loss = nn.functional.cross_entropy(model(batch.inputs[i:i + 1]), batch.targets[i:i + 1])
            grads = torch.autograd.grad(loss, params)
            rows.append(torch.cat([g.reshape(-1)[:keep] for g in grads]).numpy())
        g = np.stack(rows)
        assert proxy.compute(tiny(), batch) == pytest.approx((g @ g.T).mean(), rel=1e-10), subset


def test_knas_authors_subset_on_nb201() -> None:
    model = build(BEST_C10)
    names = authors_subset(model)
    assert len(names) == 11 and names[0] == "stem.0.weight"
    assert all(dict(model.named_parameters())[n].numel() >= 50 for n in names)
    assert all(n.endswith(".weight") and ".1." in n or n == "stem.0.weight" for n in names)


# --- Zen -----------------------------------------------------------------------------------


class Staged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.gap(self.body(x)).flatten(1))


def test_zen_matches_the_formula_with_explicit_running_variances() -> None:
    batch = synthetic_batch(5, seed=6, num_classes=3, image_size=6)
    torch.manual_seed(2)
    got = zcnas.get_proxy("zen", alpha=0.1).compute(Staged().double(), f64(batch))
    torch.manual_seed(2)
    model = Staged().double()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight)
            nn.init.zeros_(m.bias)
    x = torch.randn(batch.inputs.shape, dtype=torch.float64)
    eps = torch.randn(batch.inputs.shape, dtype=torch.float64)
    bn_inputs: list[list[np.ndarray]] = [[], []]
    feats = []
    for k, inp in enumerate((x, x + 0.1 * eps)):
        h = inp
        for layer in model.body:
            if isinstance(layer, nn.BatchNorm2d):
                bn_inputs[k].append(h.detach().numpy())
                mean = h.mean((0, 2, 3), keepdim=True)
                h = (h - mean) / torch.sqrt(h.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
            else:
                h = layer(h)
        feats.append(h.detach().numpy())
    delta = np.abs(feats[0] - feats[1]).reshape(5, -1).sum(1).mean()
    correction = 0.0
    for first, second in zip(*bn_inputs):  # running_var: 1 -> 0.9 + 0.1 v1 -> 0.9 (.) + 0.1 v2
        v1, v2 = (a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1).var(1, ddof=1)
                  for a in (first, second))
        correction += 0.5 * math.log(float(np.mean(0.9 * (0.9 + 0.1 * v1) + 0.1 * v2)))
    assert got == pytest.approx(math.log(delta) + correction, rel=1e-9)


def test_zen_is_data_free_and_needs_global_pooling(batch16: Batch) -> None:
    proxy = zcnas.get_proxy("zen")
    a = compute_score(zcnas.get_space("nb201"), proxy,
                      zcnas.get_space("nb201").parse(BEST_C10), batch16, 0)
    noise = Batch(torch.randn(batch16.inputs.shape), batch16.targets.roll(2), 10, "noise")
    b = compute_score(zcnas.get_space("nb201"), proxy,
                      zcnas.get_space("nb201").parse(BEST_C10), noise, 0)
    assert a == b and math.isfinite(a)
    with pytest.raises(ScoreError, match="AdaptiveAvgPool2d"):
        proxy.compute(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)),
                      synthetic_batch(4, image_size=2, num_classes=3))
    with pytest.raises(ZcnasError, match="alpha"):
        zcnas.get_proxy("zen", alpha=0)
