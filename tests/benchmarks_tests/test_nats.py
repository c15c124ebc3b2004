"""The ``nats`` benchmark against a small NATS-Bench tss folder in the library's real on-disk
format (written with nats_bench's own ``ArchResults``/``ResultsCount``/``pickle_save``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zcnas.benchmarks import NATSBenchmark
from zcnas.benchmarks import get_benchmark
from zcnas.exceptions import DataError
from zcnas.spaces import get_space


nats_bench = pytest.importorskip("nats_bench", reason="the nats extra is not installed "
                                 "(pip install 'zcnas[nats]')")

SEEDS = (777, 888)
# the 4 NATS settings and their evaluation sets (as in the released files)
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
SETTING_OFFSET = {"cifar10-valid": 0.0, "cifar10": 1.0, "cifar100": -20.0, "ImageNet16-120": -45.0}
SET_OFFSET = {"x-valid": 0.0, "x-test": -0.5, "ori-test": 0.25}
HP_OFFSET = {"12": -8.0, "200": 0.0}


def final_acc(base: float, setting: str, evalset: str, hp: str, seed: int) -> float:
    """The accuracy written for the last epoch; the two seeds differ by +-0.3."""
    return base + SETTING_OFFSET[setting] + SET_OFFSET[evalset] + HP_OFFSET[hp] + (
        0.3 if seed == SEEDS[0] else -0.3)


def epoch_seconds(per_epoch: float, setting: str, seed: int) -> float:
    scale = 2.0 if setting == "ImageNet16-120" else 1.0
    return per_epoch * scale * (1.0 if seed == SEEDS[0] else 1.5)


def _result(arch: str, setting: str, hp: str, seed: int, base: float, per_epoch: float):
    epochs = int(hp)
    rc = nats_bench.ResultsCount(
        setting, None, {e: 50.0 + e for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
        0.5, 80.0, {"name": "infer.tiny", "channel": 16, "num_cells": 5, "arch_str": arch,
                    "class_num": 10}, seed, epochs, [0.01],
    )
    train_seconds = {e: epoch_seconds(per_epoch, setting, seed) for e in range(epochs)}
    rc.update_train_info({e: 50.0 + e for e in range(epochs)}, None,
                         {e: 1.0 for e in range(epochs)}, train_seconds)
    accs, losses, times = {}, {}, {}
    for evalset in EVAL_SETS[setting]:
        for e in range(epochs):
            last = e == epochs - 1
            accs[f"{evalset}@{e}"] = final_acc(base, setting, evalset, hp, seed) if last else 10.0
            losses[f"{evalset}@{e}"] = 1.0
            times[f"{evalset}@{e}"] = 0.5  # seconds per evaluation epoch
    rc.update_eval(accs, losses, times)
    return rc


# three architectures with known accuracies (base, %) and training seconds per epoch
ARCHS = {
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|":
        (94.0, 20.0),
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|": (93.5, 15.0),
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|":
        (86.0, 10.0),
}
# in the meta list but without a results file
NO_FILE = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"  # noqa: E501


def write_nats_folder(root: Path) -> Path:
    """A fast-mode folder: ``meta.pickle.pbz2`` + ``{index:06d}.pickle.pbz2`` per arch."""
    folder = root / "NATS-tss-v1_0-3ffb9-simple"
    folder.mkdir()
    space = get_space("nb201")
    meta = [space.key(a) for a in space.all_archs()]  # all 15,625 cells
    nats_bench.pickle_save({"meta_archs": meta}, str(folder / "meta.pickle"))
    for arch, (base, per_epoch) in ARCHS.items():
        idx = meta.index(arch)
        data = {}
        for hp in ("12", "200"):
            res = nats_bench.ArchResults(idx, arch)
            for setting in EVAL_SETS:
                for seed in SEEDS:
                    res.update(setting, seed, _result(arch, setting, hp, seed, base, per_epoch))
            data[hp] = res.state_dict()
        nats_bench.pickle_save(data, str(folder / f"{idx:06d}.pickle"))
    return folder


@pytest.fixture(scope="module")
def nats_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nats_folder(tmp_path_factory.mktemp("nats"))


@pytest.fixture()
def bench(nats_dir: Path) -> NATSBenchmark:
    return get_benchmark("nats", path=str(nats_dir))


def test_the_file_is_readable_by_nats_bench_itself(nats_dir: Path) -> None:
    api = nats_bench.create(str(nats_dir), "tss", fast_mode=True, verbose=False)
    arch = next(iter(ARCHS))
    info = api.get_more_info(arch, "cifar10", hp="200", is_random=False)
    assert info["test-accuracy"] == pytest.approx(ARCHS[arch][0] + 1.25)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_test_accuracy_is_the_200_epoch_mean_over_seeds(bench: NATSBenchmark, arch: str) -> None:
    base = ARCHS[arch][0]
    assert bench.query(arch, "cifar10", "test") == pytest.approx(base + 1.0 + 0.25)  # ori-test
    assert bench.query(arch, "cifar100", "test") == pytest.approx(base - 20.0 - 0.5)  # x-test
    assert bench.query(arch, "imagenet16", "test") == pytest.approx(base - 45.0 - 0.5)


def test_valid_12ep_is_cifar10_valid_x_valid_at_hp12(bench: NATSBenchmark) -> None:
    for arch, (base, _) in ARCHS.items():
        assert bench.query(arch, "cifar10", "valid_12ep") == pytest.approx(base - 8.0)
        assert bench.query(arch, "cifar100", "valid_12ep") == pytest.approx(base - 28.0)
        assert bench.query(arch, "cifar10", "valid") == pytest.approx(base)
        assert bench.query(arch, "cifar10", "test_12ep") == pytest.approx(base + 1.25 - 8.0)


def test_trial_seed_picks_one_run(bench: NATSBenchmark) -> None:
    arch = next(iter(ARCHS))
    base = ARCHS[arch][0]
    assert bench.trial_seeds(arch) == list(SEEDS)
    assert bench.query(arch, "cifar10", "valid_12ep", trial_seed=777) == pytest.approx(base - 7.7)
    assert bench.query(arch, "cifar10", "valid_12ep", trial_seed=888) == pytest.approx(base - 8.3)
    with pytest.raises(DataError, match="trial seed 5"):
        bench.query(arch, "cifar10", "valid_12ep", trial_seed=5)


def test_train_seconds_are_the_logged_training_times(bench: NATSBenchmark) -> None:
    for arch, (_, per_epoch) in ARCHS.items():
        mean_epoch = per_epoch * (1.0 + 1.5) / 2
        assert bench.train_seconds(arch, "cifar10") == pytest.approx(12 * mean_epoch)
        assert bench.train_seconds(arch, "cifar10", hp="200") == pytest.approx(200 * mean_epoch)
        assert bench.train_seconds(arch, "imagenet16") == pytest.approx(12 * 2 * mean_epoch)
        # NATS simulate_train_eval charges training plus one validation epoch
        assert bench.train_seconds(arch, "cifar10", include_eval=True) == pytest.approx(
            12 * mean_epoch + 0.5)
        assert bench.train_seconds(arch, "cifar10", trial_seed=888) == pytest.approx(
            12 * per_epoch * 1.5)


def test_train_seconds_match_nats_simulate_train_eval(bench: NATSBenchmark, nats_dir: Path) -> None:
    """NATS' own search-protocol accounting charges exactly ``train_seconds(include_eval=True)``."""
    api = nats_bench.create(str(nats_dir), "tss", fast_mode=True, verbose=False)
    arch = list(ARCHS)[1]
    base = ARCHS[arch][0]
    for _ in range(4):  # simulate_train_eval draws a random trial; its reward tells which one
        reward, _latency, cost, _total = api.simulate_train_eval(arch, "cifar10", hp="12")
        seed = SEEDS[0] if reward == pytest.approx(base - 7.7) else SEEDS[1]
        assert bench.query(arch, "cifar10", "valid_12ep", trial_seed=seed) == pytest.approx(reward)
        assert bench.train_seconds(arch, trial_seed=seed, include_eval=True) == pytest.approx(cost)


def test_env_var_gives_the_path(nats_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZCNAS_NATS_PATH", str(nats_dir))
    arch = list(ARCHS)[2]
    assert NATSBenchmark().query(arch) == pytest.approx(ARCHS[arch][0] + 1.25)


def test_index_and_keys(bench: NATSBenchmark) -> None:
    space = get_space("nb201")
    keys = bench.keys()
    assert len(keys) == 15625
    assert bench.keys("cifar100") == keys
    with pytest.raises(DataError, match="unknown"):
        bench.keys("mnist")
    for arch in ARCHS:
        assert keys[bench.index(arch)] == arch
        assert space.key(space.parse(arch)) == arch


def test_missing_path_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ZCNAS_NATS_PATH", raising=False)
    arch = next(iter(ARCHS))
    with pytest.raises(DataError, match="ZCNAS_NATS_PATH") as err:
        NATSBenchmark().query(arch)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="does not exist.*ZCNAS_NATS_PATH"):
        NATSBenchmark(path=str(tmp_path / "nowhere")).query(arch)
    with pytest.raises(DataError, match="meta.pickle.pbz2"):
        NATSBenchmark(path=str(tmp_path)).query(arch)


def test_unknown_arch_dataset_metric(bench: NATSBenchmark) -> None:
    arch = next(iter(ARCHS))
    with pytest.raises(DataError, match="not in NATS-Bench"):
        bench.query("|nor_conv_3x3~0|+|bogus|")
    with pytest.raises(DataError, match="incomplete"):
        bench.query(NO_FILE)
    with pytest.raises(DataError, match="unknown NATS dataset 'svhn'"):
        bench.query(arch, "svhn")
    with pytest.raises(DataError, match="unknown NATS metric 'loss'.*valid_12ep"):
        bench.query(arch, "cifar10", "loss")


def test_single_file_mode(tmp_path: Path) -> None:
    """The non-fast-mode single file (``NATS-tss-v1_0-3ffb9.pickle.pbz2``) works too."""
    arch, (base, _) = next(iter(ARCHS.items()))
    res = {}
    for hp in ("12", "200"):
        r = nats_bench.ArchResults(0, arch)
        for setting in EVAL_SETS:
            for seed in SEEDS:
                r.update(setting, seed, _result(arch, setting, hp, seed, base, 3.0))
        res[hp] = r.state_dict()
    path = tmp_path / "NATS-tss-v1_0-3ffb9.pickle"
    nats_bench.pickle_save({"meta_archs": [arch], "arch2infos": {0: res}, "evaluated_indexes": [0]},
                           str(path))
    bench = NATSBenchmark(path=str(path) + ".pbz2")
    assert bench.query(arch, "cifar10", "test") == pytest.approx(base + 1.25)
    assert bench.train_seconds(arch) == pytest.approx(12 * 3.0 * 1.25)
