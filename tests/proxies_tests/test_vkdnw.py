"""VKDNW against an explicit per-sample, per-class autograd loop and numpy linear algebra."""

from __future__ import annotations

import math

from conftest import BEST_C10
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
from zcnas.exceptions import ZcnasError
from zcnas.proxies import _vkdnw
from zcnas.scoring import compute_score


def tiny() -> nn.Module:
    """Every supported parameter owner: a strided padded conv with bias, BN, a plain conv,
    a linear layer with bias."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4),
    )


def loop_jacobian(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """d logit_{n,c} / d (entry 0 of each parameter tensor), one sample and class at a time."""
    params = list(model.parameters())
    rows = []
    for n in range(x.shape[0]):
        out = model(x[n:n + 1])[0]
        per_class = []
        for c in range(out.shape[0]):
            grads = torch.autograd.grad(out[c], params, retain_graph=True, allow_unused=True)
            per_class.append([0.0 if g is None else float(g.reshape(-1)[0]) for g in grads])
        rows.append(per_class)
    return np.array(rows)


def setup(seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = tiny().double()
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    return model, torch.randn(6, 3, 7, 7, dtype=torch.float64)


def test_hook_jacobian_equals_the_autograd_loop() -> None:
    model, x = setup()
    jac, logits = _vkdnw.entry_jacobian(model, x)
    np.testing.assert_allclose(jac.numpy(), loop_jacobian(model, x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(logits.numpy(), model(x).detach().numpy(), rtol=1e-12)
    assert jac.shape[2] == len(list(model.parameters()))
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_cholesky_factor_reproduces_the_multinomial_covariance() -> None:
    rng = np.random.default_rng(0)
    p = torch.from_numpy(rng.dirichlet(np.ones(7), size=5))
    chol = _vkdnw.multinomial_cholesky(p).numpy()
    for row, lower in zip(p.numpy(), chol):
        assert np.allclose(np.triu(lower, 1), 0)
        np.testing.assert_allclose(lower @ lower.T, np.diag(row) - np.outer(row, row), atol=1e-12)


def numpy_score(jac: np.ndarray, logits: np.ndarray, fisher: str) -> float:
    p = np.exp(logits - logits.max(1, keepdims=True))
    p = 0.95 * p / p.sum(1, keepdims=True) + 0.05 / logits.shape[1]
    f = np.zeros((jac.shape[2], jac.shape[2]))
    for n in range(jac.shape[0]):
        cov = np.diag(p[n]) - np.outer(p[n], p[n])
        if fisher == "exact":
            f += jac[n].T @ cov @ jac[n]
        else:  # the authors' (L J)^T (L J), L the lower factor of cov (checked above)
            lower = _vkdnw.multinomial_cholesky(torch.from_numpy(p[n:n + 1]))[0].numpy()
            f += (lower @ jac[n]).T @ (lower @ jac[n])
    lam = np.abs(np.linalg.eigvalsh(f / jac.shape[0]))
    q = np.quantile(lam, np.arange(1, 10) / 10)  # numpy's default is linear interpolation
    t = q / (q.sum() + 1e-10)
    return float(-(t * np.log(t + 1e-10)).sum())


@pytest.mark.parametrize("fisher", ["authors", "exact"])
def test_score_matches_numpy(fisher: str) -> None:
    model, x = setup(1)
    proxy = zcnas.get_proxy("vkdnw", variant="entropy", fisher=fisher)
    torch.manual_seed(5)
    got = proxy.compute(model, Batch(x, torch.zeros(6, dtype=torch.long), 4, "t"))
    # compute() re-initialises He-normal first: redo that init and the loop on a twin model
    twin, _ = setup(1)
    torch.manual_seed(5)
    he_normal_init_by_hand(twin)
    jac, logits = loop_jacobian(twin, x), twin(x).detach().numpy()
    assert got == pytest.approx(numpy_score(jac, logits, fisher), rel=1e-8)
    assert 0 <= got <= math.log(9) + 1e-9


def small(batch16: Batch) -> Batch:
    return Batch(batch16.inputs[:4], batch16.targets[:4], 10, "first4")


def test_single_variant_orders_by_tensor_count_first(batch16: Batch,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _vkdnw.entry_jacobian
    monkeypatch.setattr(_vkdnw, "entry_jacobian", lambda m, x: calls.append(1) or real(m, x))
    _vkdnw._SHARED.clear()
    space = zcnas.get_space("nb201")
    arch = space.parse(BEST_C10)
    entropy = compute_score(space, zcnas.get_proxy("vkdnw", variant="entropy"),
                            arch, small(batch16), 0)
    single = compute_score(space, zcnas.get_proxy("vkdnw"), arch, small(batch16), 0)
    tensors = len(list(build(BEST_C10).parameters()))
    assert single == pytest.approx(tensors + entropy / math.log(9), rel=1e-12)
    assert len(calls) == 1  # the two variants share one computation
    other = Batch(small(batch16).inputs.flip(0), small(batch16).targets, 10, "flipped")
    compute_score(space, zcnas.get_proxy("vkdnw"), arch, other, 0)
    assert len(calls) == 2  # it uses data: another batch is another computation


def test_labels_are_not_used_and_bad_settings_name_the_fix(batch16: Batch) -> None:
    four = small(batch16)
    other = Batch(four.inputs, (four.targets + 3) % 10, 10, "relabelled")
    proxy = zcnas.get_proxy("vkdnw")
    assert proxy.compute(build(BEST_C10), four) == proxy.compute(build(BEST_C10), other)
    with pytest.raises(ZcnasError, match="variant"):
        zcnas.get_proxy("vkdnw", variant="sum")
    with pytest.raises(ZcnasError, match="fisher"):
        zcnas.get_proxy("vkdnw", fisher="empirical")


def test_unsupported_parameter_owner_names_the_fix() -> None:
    model = nn.Sequential(nn.Flatten(), nn.LayerNorm(12), nn.Linear(12, 3))
    with pytest.raises(ScoreError, match="LayerNorm"):
        zcnas.get_proxy("vkdnw").compute(model, synthetic_batch(4, image_size=2, num_classes=3))
