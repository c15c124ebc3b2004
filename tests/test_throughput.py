"""Concurrent scoring of many nets (zcnas.scoring.throughput): every mode gives the single-net
path's values, bitwise; the modes that cannot run here fail with a message naming the fix."""

from __future__ import annotations

import json

import pytest
import torch

from zcnas.cli import main
from zcnas.data import load_batch
from zcnas.exceptions import ScoreError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.scoring import format_throughput
from zcnas.scoring import score_overlapped
from zcnas.scoring import score_processes
from zcnas.scoring import score_serial
from zcnas.scoring import throughput
from zcnas.spaces import get_space


class _WeightSum(Proxy):
    """Cheap and sensitive to every initial weight and to the batch on the model's device."""

    name = "weight_sum_test"

    def compute(self, model, batch):  # noqa: ANN001, ANN201
        with torch.no_grad():
            out = model(batch.inputs).double().sum()
            return float(out + sum(p.double().sum() for p in model.parameters()))


class _NoisyProxy(Proxy):
    """Draws from torch's global RNG while it scores (threads would change its values)."""

    name = "noisy_test"

    def compute(self, model, batch):  # noqa: ANN001, ANN201
        return float(torch.rand(()).item()) + sum(p.numel() for p in model.parameters())


class _FailingCheck(Proxy):
    """Rejects every model in check_model (an error raised on the build thread)."""

    name = "failing_check_test"

    def check_model(self, model):  # noqa: ANN001, ANN201
        raise ZcnasError("this proxy rejects every model")

    def compute(self, model, batch):  # noqa: ANN001, ANN201
        return 0.0


@pytest.fixture(scope="module")
def setup(shared_data):  # noqa: ANN001, ANN201
    space = get_space("nb201")
    return space, space.sample(5, seed=3), load_batch("cifar10", 2, seed=0)


def test_prefetch_gives_the_single_net_values(setup) -> None:  # noqa: ANN001
    space, archs, batch = setup
    proxy = _WeightSum()
    serial = score_serial(space, proxy, archs, batch, seed=7)
    assert len(set(serial)) == len(archs)  # five different nets, five different values
    for prefetch in (1, 4):  # builder blocked on a full queue, and running ahead
        assert score_overlapped(space, proxy, archs, batch, seed=7, prefetch=prefetch) == serial
    # another seed gives other weights, hence other values: the seed reaches the built models
    other = score_overlapped(space, proxy, archs, batch, seed=8)
    assert all(a != b for a, b in zip(other, serial))


@pytest.mark.slow
def test_prefetch_gives_the_single_net_gradsign(setup) -> None:  # noqa: ANN001
    space, archs, batch = setup
    gradsign = get_proxy("gradsign")
    assert (score_overlapped(space, gradsign, archs[:2], batch, seed=7)
            == score_serial(space, gradsign, archs[:2], batch, seed=7))


def test_streams_off_is_the_prefetch_path_and_streams_need_cuda(setup) -> None:  # noqa: ANN001
    space, archs, batch = setup
    proxy = get_proxy("gradalign")
    serial = score_serial(space, proxy, archs[:2], batch)
    assert score_overlapped(space, proxy, archs[:2], batch, streams=0) == serial
    with pytest.raises(ZcnasError, match="--device cuda"):
        score_overlapped(space, proxy, archs[:2], batch, streams=2)
    with pytest.raises(ZcnasError, match="leave 'streams' out"):
        throughput(n=1, batch_size=2, modes=["streams"])


def test_a_proxy_that_draws_random_numbers_is_refused(setup) -> None:  # noqa: ANN001
    space, archs, batch = setup
    with pytest.raises(ScoreError, match="use mode 'serial' or 'processes'"):
        score_overlapped(space, _NoisyProxy(), archs, batch)
    assert len(score_serial(space, _NoisyProxy(), archs[:2], batch)) == 2


def test_an_error_on_the_build_thread_reaches_the_caller(setup) -> None:  # noqa: ANN001
    space, archs, batch = setup
    with pytest.raises(ZcnasError, match="rejects every model"):
        score_overlapped(space, _FailingCheck(), archs, batch)


@pytest.mark.slow
def test_processes_give_the_single_net_values(setup) -> None:  # noqa: ANN001
    space, archs, batch = setup
    proxy = get_proxy("gradsign")
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: same kernels, same rounding
    try:
        serial = score_serial(space, proxy, archs[:3], batch, seed=1)
    finally:
        torch.set_num_threads(old)
    values, busy = score_processes(space, proxy, archs[:3], batch, seed=1, workers=2,
                                   threads=1)
    assert values == serial
    assert busy > 0


def test_throughput_compares_modes(shared_data, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    result = throughput(n=2, batch_size=2, modes=["prefetch"], threads=1)
    assert list(result["modes"]) == ["serial", "prefetch"]
    for rec in result["modes"].values():
        assert rec["identical"] and rec["max_rel_diff"] == 0.0
        assert rec["seconds"] > 0 and rec["nets_per_second"] == pytest.approx(2 / rec["seconds"])
    assert result["modes"]["serial"]["speedup"] == 1.0
    assert "prefetch" in format_throughput(result)
    with pytest.raises(ZcnasError, match="use serial, prefetch"):
        throughput(n=1, modes=["vmap_models"])
    with pytest.raises(ZcnasError, match="one proxy"):
        throughput(n=1, proxy="ensemble")


def test_cli_bench_suite_throughput(shared_data, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    code = main(["bench", "--suite", "throughput", "--modes", "prefetch", "--n", "2",
                 "--batch-size", "2", "--threads", "1", "--proxy", "gradalign", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["proxy"] == "gradalign" and data["modes"]["prefetch"]["identical"]
    assert main(["bench", "--suite", "throughput", "--proxy", "gradsign,gradalign"]) == 2
    assert "one proxy" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_streams_give_the_single_net_values_on_cuda(setup) -> None:  # noqa: ANN001
    space, archs, batch = setup
    proxy = get_proxy("gradsign")
    serial = score_serial(space, proxy, archs, batch, device="cuda")
    for streams in (1, 3):
        assert score_overlapped(space, proxy, archs, batch, device="cuda",
                                streams=streams) == serial
    assert score_overlapped(space, proxy, archs, batch, device="cuda") == serial
