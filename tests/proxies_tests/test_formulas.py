"""The baseline proxies compute the formulas their docstrings state.

Cheap checks against independent computations (tiny models, brute force) and against
published NAS-Bench-201 / NAS-Bench-Suite-Zero numbers for known cells.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import BEST_C10
from tests.conftest import RESNET
from tests.proxies_tests.test_conformance import POOL_SKIP
from zcnas.benchmarks import get_benchmark
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.data import synthetic_batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ScoreError
from zcnas.proxies import get_proxy
from zcnas.scoring import compute_score
from zcnas.scoring import score_record
from zcnas.spaces import get_space


SPACE = get_space("nb201")


def nb201(proxy: str, arch: str, batch: Batch, seed: int = 0, **params: object) -> float:
    return compute_score(SPACE, get_proxy(proxy, **params), SPACE.parse(arch), batch, seed)


# --- model size ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", [BEST_C10, RESNET, POOL_SKIP])
def test_params_equal_nb201_table(arch: str, shared_data) -> None:  # noqa: ANN001
    table = get_benchmark("nb201").query(arch, "cifar10", "column:params_mb")
    assert nb201("params", arch, synthetic_batch(2)) == pytest.approx(table, abs=1e-6)


def test_flops_of_best_cell_is_the_published_153_27() -> None:
    assert round(nb201("flops", BEST_C10, synthetic_batch(2)), 2) == 153.27


# --- synflow -------------------------------------------------------------------------------


def test_synflow_ignores_the_data_batch(shared_data) -> None:  # noqa: ANN001
    values = {nb201("synflow", BEST_C10, b) for b in (
        load_batch("cifar10", 4, seed=0), load_batch("cifar10", 4, seed=1), synthetic_batch(4))}
    assert len(values) == 1


def test_synflow_depends_on_init_seed_only_mildly() -> None:
    a, b = (nb201("synflow", BEST_C10, synthetic_batch(2), seed=s) for s in (0, 1))
    assert a != b and abs(math.log(a) - math.log(b)) < 0.5


def test_synflow_matches_nas_bench_suite_zero(shared_data) -> None:  # noqa: ANN001
    """NB-Suite-Zero stores log(synflow); ours agrees to within init noise (measured < 0.2)."""
    wanted = {"6111", "11472", "12784", "0", "5759"}
    with (shared_data / "nb201" / "nb201_zc_proxies_cifar10.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["index"] in wanted]
    assert len(rows) == len(wanted)
    for row in rows:
        ours = math.log(nb201("synflow", row["arch"], synthetic_batch(1)))
        assert ours == pytest.approx(float(row["synflow"]), abs=0.5), row["index"]


# --- jacob_cov and naswot ------------------------------------------------------------------


@pytest.mark.parametrize("n", [8, 24])
def test_jacob_cov_is_at_most_minus_batch_size(n: int, shared_data) -> None:  # noqa: ANN001
    batch = load_batch("cifar10", n, seed=0)
    for arch in (BEST_C10, RESNET):
        assert nb201("jacob_cov", arch, batch) <= -n


def test_jacob_cov_of_identical_jacobians() -> None:
    """A linear map has the same input Jacobian for every sample: the correlation matrix is
    all ones, eigenvalues (N, 0, ..., 0)."""
    n, k = 6, 1e-5
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    score = get_proxy("jacob_cov").compute(model, synthetic_batch(n, image_size=2))
    expected = -(math.log(n + k) + 1 / (n + k) + (n - 1) * (math.log(k) + 1 / k))
    assert score == pytest.approx(expected, rel=1e-6)


def _relu_codes(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    codes = []
    handles = [m.register_forward_hook(lambda _m, i, _o: codes.append(i[0].flatten(1) > 0))
               for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(inputs)
    for h in handles:
        h.remove()
    return torch.cat(codes, dim=1)


def test_naswot_is_logdet_of_hamming_kernel(shared_data) -> None:  # noqa: ANN001
    batch = load_batch("cifar10", 16, seed=0)
    score = nb201("naswot", BEST_C10, batch)
    torch.manual_seed(0)
    model = SPACE.build(SPACE.parse(BEST_C10)).train()
    codes = _relu_codes(model, batch.inputs).double()
    units = codes.shape[1]
    hamming = torch.cdist(codes, codes, p=1)
    kernel = (units - hamming).numpy()
    sign, logdet = np.linalg.slogdet(kernel)
    assert sign > 0
    assert score == pytest.approx(logdet, rel=1e-9)
    # Hadamard: det K <= prod K_ii = units ** N
    assert score <= len(batch) * math.log(units)


def test_naswot_fails_cleanly_on_duplicate_samples(shared_data) -> None:  # noqa: ANN001
    b = load_batch("cifar10", 8, seed=0)
    inputs = torch.cat([b.inputs[:7], b.inputs[:1]])
    dup = Batch(inputs, b.targets, b.num_classes, "dup")
    record = score_record(SPACE, "naswot", BEST_C10, dup)
    assert record.status == "failed" and "non-finite" in (record.reason or "")


def test_naswot_needs_relu_modules() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(ScoreError, match="no nn.ReLU"):
        get_proxy("naswot").compute(model, synthetic_batch(4, image_size=2, num_classes=3))


# --- gradient proxies on a tiny model, against independent computations ---------------------


def tiny() -> tuple[nn.Module, Batch]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    return model, synthetic_batch(8, seed=3, num_classes=3, image_size=2)


def _loss_of(weights: list[torch.Tensor], model: nn.Module, batch: Batch) -> torch.Tensor:
    lin1, lin2 = model[1], model[3]
    h = torch.relu(batch.inputs.flatten(1) @ weights[0].t() + lin1.bias)
    return nn.functional.cross_entropy(h @ weights[1].t() + lin2.bias, batch.targets)


def test_grad_norm_and_snip_on_tiny_model() -> None:
    model, batch = tiny()
    ws = [model[1].weight.detach().clone().requires_grad_(), model[3].weight.detach().clone()
          .requires_grad_()]
    grads = torch.autograd.grad(_loss_of(ws, model, batch), ws)
    assert get_proxy("grad_norm").compute(model, batch) == pytest.approx(
        sum(float(g.norm()) for g in grads), rel=1e-6)
    # snip as zero-cost-nas computes it: the gradient w.r.t. an all-ones mask on each weight
    masks = [torch.ones_like(w, requires_grad=True) for w in ws]
    mgrads = torch.autograd.grad(_loss_of([w.detach() * m for w, m in zip(ws, masks)], model, batch),
                                 masks)
    model, batch = tiny()
    assert get_proxy("snip").compute(model, batch) == pytest.approx(
        sum(float(g.abs().sum()) for g in mgrads), rel=1e-6)


def test_grasp_is_minus_theta_hessian_gradient() -> None:
    model, batch = tiny()
    shapes = [model[1].weight.shape, model[3].weight.shape]
    flat = torch.cat([model[1].weight.detach().flatten(), model[3].weight.detach().flatten()])

    def loss(v: torch.Tensor) -> torch.Tensor:
        n1 = shapes[0].numel()
        return _loss_of([v[:n1].view(shapes[0]), v[n1:].view(shapes[1])], model, batch)

    g = torch.autograd.functional.jacobian(loss, flat)
    h = torch.autograd.functional.hessian(loss, flat)
    expected = float(-(flat * (h @ g)).sum())
    assert get_proxy("grasp").compute(model, batch) == pytest.approx(expected, rel=1e-4)


def test_fisher_on_tiny_model() -> None:
    model, batch = tiny()
    x = batch.inputs.flatten(1)
    a1 = model[1](x)
    a2 = model[3](torch.relu(a1))
    loss = nn.functional.cross_entropy(a2, batch.targets)
    g1, g2 = torch.autograd.grad(loss, [a1, a2])
    # zero-cost-nas broadcasts each channel's value to the channel's fan_in weights, then sums
    expected = sum(fan_in * float((0.5 * (a.detach() * g).pow(2).mean(0)).sum())
                   for a, g, fan_in in ((a1, g1, 12), (a2, g2, 6)))
    model, batch = tiny()
    assert get_proxy("fisher").compute(model, batch) == pytest.approx(expected, rel=1e-5)


def test_zico_with_two_splits_is_closed_form() -> None:
    """With two parts a, b: mean|g| / std(g) = (|a| + |b|) / |a - b| per weight."""
    model, batch = tiny()
    halves = [Batch(batch.inputs[:4], batch.targets[:4], 3, "h"),
              Batch(batch.inputs[4:], batch.targets[4:], 3, "h")]
    per_half = []
    for h in halves:
        ws = [model[1].weight.detach().clone().requires_grad_(),
              model[3].weight.detach().clone().requires_grad_()]
        per_half.append(torch.autograd.grad(_loss_of(ws, model, h), ws))
    expected = 0.0
    for a, b in zip(*per_half):
        a, b = a.double(), b.double()
        nz = (a - b) != 0
        expected += math.log(float(((a.abs() + b.abs())[nz] / (a - b).abs()[nz]).sum()))
    assert get_proxy("zico").compute(model, batch) == pytest.approx(expected, rel=1e-6)


def test_zico_rejects_bad_settings() -> None:
    model, batch = tiny()
    with pytest.raises(ScoreError, match="splits >= 2"):
        get_proxy("zico", splits=1).compute(model, batch)
    with pytest.raises(DataError, match="at least 4 samples"):
        get_proxy("zico", splits=4).compute(model, Batch(batch.inputs[:3], batch.targets[:3], 3, "s"))
