"""GradSign and the per-sample gradient machinery against the plain batch-1 loop on real NB201
nets and a real CIFAR-10 batch.

Tolerances. In float64 the vectorised and looped per-sample gradients agree to ~1e-15, so signs
are required to be equal outside a dead zone of 1e-9 x the (sample, layer) gradient RMS (float64
kinks within 1e-9 of 0 are too rare to matter). In float32 (the production dtype) no fixed
fraction of agreeing signs holds on every CPU: a ReLU input within rounding of 0 may fall on
either side, and the sample's gradient then jumps by ~2%. ``roundoff`` compares each float32
path with the exact gradient of the function it evaluated (its own kink choices), with a dead
zone derived from the float32 error model (see its docstring), and bounds the score difference
by what the undecided entries allow.
"""

from __future__ import annotations

from conftest import BEST_C10
from conftest import DISCONNECTED
from conftest import RESNET
from conftest import WEAK
from conftest import build
from conftest import oom_above
import pytest
import torch
import torch.nn.functional as F

from proxies_tests import roundoff
import zcnas
from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies import _persample
from zcnas.proxies._gradsign import gradsign_from_counts
from zcnas.proxies._gradsign import sign_counts
from zcnas.proxies._persample import conv_linear_weights
from zcnas.proxies._persample import loop_per_sample_grads
from zcnas.proxies._persample import stream_per_sample_grads


NETS = [BEST_C10, WEAK, RESNET]


def collect(model: torch.nn.Module, batch: Batch, loop: bool, chunk: int | None = 8
            ) -> dict[str, torch.Tensor]:
    parts: dict[str, list[torch.Tensor]] = {}

    def keep(grads: dict[str, torch.Tensor], _start: int) -> None:
        for name, g in grads.items():
            parts.setdefault(name, []).append(g.flatten(1).clone())

    if loop:
        loop_per_sample_grads(model, batch, keep)
    else:
        stream_per_sample_grads(model, batch, keep, chunk_size=chunk)
    return {name: torch.cat(p) for name, p in parts.items()}


def test_parameter_set_is_conv_and_linear_weights() -> None:
    model = build(BEST_C10)
    names = conv_linear_weights(model)
    modules = dict(model.named_modules())
    assert names and all(n.endswith(".weight") for n in names)
    kinds = {type(modules[n.rsplit(".", 1)[0]]) for n in names}
    assert kinds == {torch.nn.Conv2d, torch.nn.Linear}
    assert names[-1] == "classifier.weight"
    n_conv_linear = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in model.modules())
    assert len(names) == n_conv_linear


@pytest.mark.parametrize("arch", NETS)
def test_vectorised_signs_equal_loop_float64(arch: str, batch8_f64: Batch) -> None:
    batch = batch8_f64
    vec = collect(build(arch, torch.float64), batch, loop=False)
    ref = collect(build(arch, torch.float64), batch, loop=True)
    assert vec.keys() == ref.keys()
    agree = total = 0
    for name in ref:
        v, r = vec[name], ref[name]
        rms = r.pow(2).mean(1, keepdim=True).sqrt()
        outside = r.abs() > 1e-9 * rms
        assert torch.equal(torch.sign(v)[outside], torch.sign(r)[outside]), name
        agree += int((torch.sign(v).sum(0) == torch.sign(r).sum(0)).sum())
        total += r.shape[1]
    assert agree / total > 0.9999


# The dead zones of roundoff leave ~1e-4 of the entries undecided on a well-conditioned net, plus
# the entries below a kink jump (~2% of the RMS) in the quarter of the samples that have one: a
# bound of 1% means the check decides (and compares) at least 99% of the signs.
NB201_MAX_UNDECIDED = 0.01


def check_gradsign_float32(arch: str, batch: Batch, seed: int) -> roundoff.SignReport:
    """The production vmap path (whole batch, as the proxy runs it, and in chunks of 5) and the
    loop against the exact gradients under their kink choices; the proxy's own scores equal
    those of the checked paths."""
    def make(dtype: torch.dtype) -> torch.nn.Module:
        return build(arch, dtype, seed=seed)

    paths = {
        "vmap": roundoff.run_vmap(make(torch.float32), batch, chunk_size=32),
        "vmap_chunk5": roundoff.run_vmap(make(torch.float32), batch, chunk_size=5),
        "loop": roundoff.run_loop(make(torch.float32), batch)[0],
    }
    report = roundoff.check_signs(roundoff.reference(make, batch, paths), paths)
    report.assert_consistent(NB201_MAX_UNDECIDED)
    proxy = zcnas.get_proxy("gradsign")
    assert proxy.compute(make(torch.float32), batch) == report.scores["vmap"]
    assert proxy.reference(make(torch.float32), batch) == report.scores["loop"]
    return report


def first(batch: Batch, n: int) -> Batch:
    return Batch(batch.inputs[:n], batch.targets[:n], batch.num_classes, f"first {n}")


def test_vectorised_signs_match_loop_float32(batch16: Batch) -> None:
    """Issue 12: the cell whose raw sign agreement (0.99884) failed a 0.999 threshold; 8 of the
    samples keep it fast (they include kinks that the paths put on different sides)."""
    report = check_gradsign_float32(RESNET, first(batch16, 8), seed=0)
    assert sum(report.kinks_moved.values()) > 0  # the case that broke raw fractions is covered


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("arch", NETS)
def test_vectorised_signs_match_loop_float32_nets_and_seeds(arch: str, seed: int,
                                                            batch16: Batch) -> None:
    check_gradsign_float32(arch, batch16, seed=seed)


def batch_statistics_path(model: torch.nn.Module, batch: Batch) -> roundoff.Path:
    """A classic bug: one batched forward, so BatchNorm normalises with the whole batch's
    statistics, then each sample's loss differentiated through it."""
    names = conv_linear_weights(model)
    params = dict(model.named_parameters())
    hooks = roundoff.KinkHooks(model, count_samples=False)
    with hooks:
        out = model(batch.inputs)
    rows: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for i in range(len(batch)):
        loss = F.cross_entropy(out[i:i + 1], batch.targets[i:i + 1])
        grads = torch.autograd.grad(loss, [params[n] for n in names], retain_graph=True)
        for n, g in zip(names, grads):
            rows[n].append(g.detach().flatten()[None].double())
    regions = [[r[i:i + 1] for r in hooks.regions] for i in range(len(batch))]
    return roundoff.Path({n: torch.cat(r) for n, r in rows.items()}, regions)


def test_float32_check_catches_batch_statistics_and_a_missing_layer(batch16: Batch) -> None:
    batch = first(batch16, 8)

    def make(dtype: torch.dtype) -> torch.nn.Module:
        return build(WEAK, dtype)

    vmap = roundoff.run_vmap(make(torch.float32), batch)
    dropped_layer = "cells.5.conv_a.1.weight"
    dropped = roundoff.Path({n: torch.zeros_like(g) if n == dropped_layer else g
                             for n, g in vmap.grads.items()}, vmap.regions)
    paths = {"vmap": vmap, "batch_stats": batch_statistics_path(make(torch.float32), batch),
             "dropped": dropped}
    ref = roundoff.reference(make, batch, paths)
    report = roundoff.check_signs(ref, paths)
    entries = sum(g.numel() for g in vmap.grads.values())
    assert report.sign_violations["vmap"] == 0
    assert report.sign_violations["batch_stats"] > 0.1 * entries
    assert report.kink_violations["batch_stats"] > 0  # its forward is another function
    assert list(report.violations_per_layer["dropped"]) == [dropped_layer]
    # every decided entry of the dropped layer is wrong (sign 0 instead of +-1)
    assert report.sign_violations["dropped"] > 0.99 * vmap.grads[dropped_layer].numel()


def test_counts_equal_summed_signs_of_loop(batch16: Batch) -> None:
    """sign_counts(loop=True) is exactly the official formula on the loop's gradients."""
    model = build(RESNET)
    grads = collect(model, batch16, loop=True)
    counts = sign_counts(build(RESNET), batch16, loop=True)
    for name, g in grads.items():
        assert torch.equal(counts[name].flatten(), torch.sign(g).sum(0).to(torch.int32))
    expected = sum(int(torch.sign(g).sum(0).abs().sum()) for g in grads.values())
    assert gradsign_from_counts(counts, "sum") == expected
    n_entries = sum(g.shape[1] for g in grads.values())
    assert gradsign_from_counts(counts, "mean") == pytest.approx(expected / n_entries)


def test_chunked_equals_unchunked(batch8_f64: Batch) -> None:
    # float32 chunks may pick other kernels: check_gradsign_float32 checks a chunked path too
    whole = sign_counts(build(BEST_C10, torch.float64), batch8_f64, chunk_size=None)
    chunked = sign_counts(build(BEST_C10, torch.float64), batch8_f64, chunk_size=3)
    assert all(torch.equal(whole[k], chunked[k]) for k in whole)


def test_out_of_memory_halves_the_chunk(batch16: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = sign_counts(build(WEAK), batch16, chunk_size=4)
    seen = oom_above(monkeypatch, 4)
    counts: dict[str, torch.Tensor] = {}
    used = stream_per_sample_grads(
        build(WEAK), batch16,
        lambda g, s: [counts.__setitem__(k, counts.get(k, 0) + torch.sign(v).sum(0).int())
                      for k, v in g.items()],
        chunk_size=16,
    )
    assert used == 4
    assert seen[:3] == [16, 8, 4]
    assert all(torch.equal(expected[k], counts[k]) for k in expected)


def test_out_of_memory_at_one_sample_raises(batch16: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(*_args, **_kw):  # noqa: ANN002, ANN003, ANN202
        raise torch.OutOfMemoryError("fake: CUDA out of memory")

    monkeypatch.setattr(_persample, "_vmap_chunk", fake)
    with pytest.raises(torch.OutOfMemoryError):
        sign_counts(build(WEAK), batch16, chunk_size=2)


def test_batchnorm_buffers_untouched(batch16: Batch) -> None:
    model = build(RESNET)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    zcnas.get_proxy("gradsign").compute(model, batch16)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_finite_deterministic_and_through_score(batch16: Batch) -> None:
    a = zcnas.score("nb201", "gradsign", RESNET, batch16, seed=3)
    b = zcnas.score("nb201", "gradsign", RESNET, batch16, seed=3)
    c = zcnas.score("nb201", zcnas.get_proxy("gradsign", variant="mean"), RESNET, batch16, seed=3)
    assert a == b and a > 0 and c > 0
    assert torch.isfinite(torch.tensor([a, c])).all()


def test_disconnected_cell_has_no_gradient_and_scores_zero(batch16: Batch) -> None:
    # no path from input to output: every weight gradient is zero (None -> 0, sign(0) = 0)
    counts = sign_counts(build(DISCONNECTED), batch16)
    assert all(int(c.abs().sum()) == 0 for c in counts.values())
    assert zcnas.get_proxy("gradsign").compute(build(DISCONNECTED), batch16) == 0.0


def test_known_order_best_cell_above_weak_cells(shared_data) -> None:  # noqa: ANN001
    batch = zcnas.load_batch("cifar10", 32, seed=0)
    bench = zcnas.get_benchmark("nb201")
    pool = "|avg_pool_3x3~0|+|avg_pool_3x3~0|none~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"
    assert bench.query(BEST_C10) > 94 > 86 > bench.query(WEAK) > 55 > bench.query(pool)
    best = zcnas.score("nb201", "gradsign", BEST_C10, batch)
    assert best > zcnas.score("nb201", "gradsign", WEAK, batch)
    assert best > zcnas.score("nb201", "gradsign", pool, batch)


def test_bad_parameters_name_the_fix() -> None:
    with pytest.raises(ZcnasError, match="variant must be one of sum, mean"):
        zcnas.get_proxy("gradsign", variant="avg")
    with pytest.raises(ZcnasError, match="chunk_size"):
        zcnas.get_proxy("gradsign", chunk_size=0)
    proxy = zcnas.get_proxy("gradsign", variant="mean", chunk_size=8)
    assert proxy.get_params() == {"variant": "mean", "chunk_size": 8}
    assert proxy.direction == "maximize"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(batch16: Batch) -> None:
    cpu = zcnas.score("nb201", "gradsign", RESNET, batch16, device="cpu")
    gpu = zcnas.score("nb201", "gradsign", RESNET, batch16, device="cuda")
    assert gpu == pytest.approx(cpu, rel=1e-3)
    align_cpu = zcnas.score("nb201", "gradalign", RESNET, batch16, device="cpu")
    align_gpu = zcnas.score("nb201", "gradalign", RESNET, batch16, device="cuda")
    assert align_gpu == pytest.approx(align_cpu, rel=1e-2, abs=1e-2)
