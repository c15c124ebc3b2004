"""MeCo and SWAP against independent computations (numpy correlations, Python sets of patterns)."""

from __future__ import annotations

import math

from conftest import BEST_C10
from conftest import build
import numpy as np
import pytest
import torch
from torch import nn

import zcnas
from zcnas.data import Batch
from zcnas.data import synthetic_batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ScoreError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import _swap
from zcnas.proxies._meco import min_corr_eigenvalue


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(),
        nn.Sequential(nn.Conv2d(5, 6, 3, stride=2, padding=1), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    )


# --- MeCo ----------------------------------------------------------------------------------


def meco_numpy(model: nn.Module, x: torch.Tensor) -> float:
    """Every module's output for the first image, numpy corrcoef (NaN -> 0), eigvalsh."""
    outs = []
    handles = [m.register_forward_hook(lambda _m, _i, o: outs.append(o[0].detach().double().numpy()))
               for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    total = 0.0
    for o in outs:
        feat = o.reshape(o.shape[0], -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(feat) if feat.shape[1] > 1 else np.full((len(feat),) * 2, np.nan)
        corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0, posinf=0.0, neginf=0.0)
        total += float(np.linalg.eigvalsh(corr).min())
    return total


def test_meco_matches_numpy_on_a_tiny_net() -> None:
    model = tiny()
    batch = synthetic_batch(3, seed=1, num_classes=3, image_size=6)
    expected = meco_numpy(model, batch.inputs[:1])
    assert zcnas.get_proxy("meco").compute(tiny(), batch) == pytest.approx(expected, rel=1e-10)


def test_min_correlation_eigenvalue_closed_forms() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    dup = torch.from_numpy(np.stack([a, 2 * a + 1, -a]))  # rank one: eigenvalues 0, 0, 3
    assert min_corr_eigenvalue(dup) == pytest.approx(0.0, abs=1e-12)
    indep = torch.from_numpy(np.linalg.qr(rng.normal(size=(400, 4)))[0].T)
    indep = indep - indep.mean(1, keepdim=True)
    corr = np.corrcoef(indep.numpy())
    assert min_corr_eigenvalue(indep) == pytest.approx(np.linalg.eigvalsh(corr).min(), rel=1e-10)
    const = torch.from_numpy(np.stack([a, np.ones(50)]))  # constant channel: NaN row -> 0
    assert min_corr_eigenvalue(const) == pytest.approx(0.0, abs=1e-12)
    assert min_corr_eigenvalue(torch.ones(7, 1)) == 0.0


def test_meco_uses_the_first_image_only_and_ignores_labels(batch16: Batch) -> None:
    proxy = zcnas.get_proxy("meco")
    base = proxy.compute(build(BEST_C10), batch16)
    shuffled = Batch(torch.cat([batch16.inputs[:1], batch16.inputs[1:].flip(0)]),
                     batch16.targets.roll(3), 10, "tail-shuffled")
    assert proxy.compute(build(BEST_C10), shuffled) == base
    other_first = Batch(batch16.inputs.roll(1, 0), batch16.targets, 10, "rolled")
    assert proxy.compute(build(BEST_C10), other_first) != base


def test_meco_opt_samples_eight_channels_and_rescales() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.Conv2d(12, 20, 1))
    batch = synthetic_batch(2, seed=3, num_classes=3, image_size=6)
    torch.manual_seed(1)
    opt = zcnas.get_proxy("meco", variant="opt").compute(model, batch)
    torch.manual_seed(1)  # the same draws: one randperm per module call, in call order
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o[0].detach()))
             for m in model.modules()]
    with torch.no_grad():
        model(batch.inputs[:1])
    for h in hooks:
        h.remove()
    expected = 0.0
    for o in outs:
        c = o.shape[0]
        pick = torch.randperm(c)[:8].numpy()
        feat = o.reshape(c, -1).double().numpy()[pick]
        expected += float(np.linalg.eigvalsh(np.corrcoef(feat)).min()) * c / 8
    assert opt == pytest.approx(expected, rel=1e-10)
    full = zcnas.get_proxy("meco").compute(model, batch)
    assert opt != pytest.approx(full)
    with pytest.raises(ZcnasError, match="variant"):
        zcnas.get_proxy("meco", variant="max")
    with pytest.raises(DataError, match="samples"):
        zcnas.get_proxy("meco", samples=4).compute(model, batch)


# --- SWAP ----------------------------------------------------------------------------------


def swap_python(model: nn.Module, x: torch.Tensor) -> int:
    """Set of per-unit tuples of (ReLU output > 0) over the samples."""
    outs = []
    handles = [m.register_forward_hook(lambda _m, i, o: outs.append(o.detach()) if i[0].dim() == 4
                                       else None)
               for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    codes = torch.cat([o.reshape(x.shape[0], -1) > 0 for o in outs], 1).numpy()
    return len({tuple(col) for col in codes.T})


def test_swap_count_matches_a_python_set() -> None:
    batch = synthetic_batch(7, seed=2, num_classes=3, image_size=6)
    torch.manual_seed(4)
    got = zcnas.get_proxy("swap", samples=7, repeats=1).compute(tiny(), batch)
    torch.manual_seed(4)
    model = tiny()
    for m in model.modules():  # the authors' Gaussian re-init, same RNG order
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    assert got == swap_python(model, batch.inputs)


@pytest.mark.parametrize("n", [3, 20, 21, 70])
def test_packed_counting_equals_set_counting(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    codes = torch.rand(n, 500, generator=g) > 0.7
    codes[:, 250:] = codes[:, :250]  # duplicated units
    assert _swap.swap_count(codes) == len({tuple(c) for c in codes.T.tolist()})
    assert _swap.distinct_rows(codes) == len({tuple(r) for r in codes.tolist()})


def test_swap_is_bounded_and_regularised(batch16: Batch) -> None:
    plain = zcnas.get_proxy("swap", samples=4, repeats=2)
    value = plain.compute(build(BEST_C10), batch16)
    assert 1 <= value <= 2 ** 4
    kparams = sum(p.numel() for p in build(BEST_C10).parameters()) / 1e3
    reg = zcnas.get_proxy("swap", samples=4, repeats=2, regular=True, mu=kparams - 100, sigma=1e4)
    assert reg.compute(build(BEST_C10), batch16) == pytest.approx(value * math.exp(-1.0), rel=1e-12)


def test_swap_bad_settings_name_the_fix(batch16: Batch) -> None:
    with pytest.raises(ZcnasError, match="mu"):
        zcnas.get_proxy("swap", regular=True)
    with pytest.raises(ZcnasError, match="repeats"):
        zcnas.get_proxy("swap", repeats=0)
    with pytest.raises(DataError, match="samples"):
        zcnas.get_proxy("swap", samples=32).compute(build(BEST_C10), batch16)
    with pytest.raises(ScoreError, match="nn.ReLU"):
        zcnas.get_proxy("swap", samples=2, repeats=1).compute(
            nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), synthetic_batch(2, image_size=2))
