"""zcnas.oneshot: the weight-sharing supernet over NNI's super-modules, its training (sandwich
rule, distillation, resume after Ctrl-C), BN recalibration, and the ``oneshot`` evaluator's
checkpoint and score keys. A 4-channel, 1-cell-per-stage NB201 on tiny image sets: seconds."""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal

import numpy as np
import pytest
import torch


if os.environ.get("CI") == "true":
    import nni  # noqa: F401  (CI installs the nni extra: a missing NNI fails here, not skips)
else:
    pytest.importorskip("nni", reason="needs the nni extra: pip install 'zcnas[nni]'")

import zcnas  # noqa: E402
from zcnas import oneshot  # noqa: E402
from zcnas.exceptions import DataError  # noqa: E402
from zcnas.exceptions import ZcnasError  # noqa: E402
from zcnas.scoring import resolve  # noqa: E402
from zcnas.scoring import score_key  # noqa: E402
from zcnas.scoring import score_record  # noqa: E402
from zcnas.spaces import NB201Space  # noqa: E402


pytestmark = pytest.mark.nni
TINY: dict[str, object] = {"n_images": 96, "holdout": 32, "batch_size": 16, "warmup_steps": 2}


@pytest.fixture(scope="module", autouse=True)
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> str:
    """96 seeded 8x8 images of 4 classes (NB201 networks pool globally: any size works)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("img") / "tiny.npz"
    y = np.repeat(np.arange(4), 24)
    x = rng.integers(0, 256, (96, 8, 8, 3), dtype=np.uint8)
    x[..., 0] = np.clip(x[..., 0] // 2 + 40 * y[:, None, None], 0, 255)  # learnable a little
    np.savez(path, x=x, y=y)
    TINY["data"] = f"npz:{path}"
    return TINY["data"]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space(channels=4, cells_per_stage=1)


@pytest.fixture(scope="module")
def split(tiny_images: str) -> oneshot.SplitData:
    return oneshot.split_images(tiny_images, 96, 32)


def _config(epochs: int = 2, **kw: object) -> oneshot.SupernetConfig:
    return oneshot.SupernetConfig(epochs=epochs, **{**TINY, **kw})  # type: ignore[arg-type]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_a_child_is_the_space_network_with_inherited_weights(space: NB201Space) -> None:
    net = oneshot.Supernet(space, 4, seed=0)
    assert all(type(m).__name__ == "PathSamplingLayer" for m in net.positions)  # NNI's modules
    assert len(net.positions) == 3 * 6  # one per edge and cell
    x = torch.randn(3, 3, 8, 8)
    for arch in space.sample(4, seed=2):
        net.set_child(arch)
        net.eval()
        child = space.build(arch, num_classes=4)
        child.load_state_dict(oneshot.child_state_dict(net, arch))  # strict: same modules
        child.eval()
        assert torch.equal(net(x), child(x))
        assert torch.equal(net.freeze(arch).eval()(x), child(x))
    # children share the supernet's tensors: training one moves the other's shared weights
    a, b = space.sample(2, seed=5)
    before = oneshot.child_state_dict(net, b)["stem.0.weight"].clone()
    net.set_child(a)
    net.train()
    net(x).sum().backward()
    torch.optim.SGD(net.parameters(), lr=1.0).step()
    assert not torch.equal(oneshot.child_state_dict(net, b)["stem.0.weight"], before)


def test_sandwich_children_are_largest_smallest_and_seeded_random(space: NB201Space) -> None:
    net = oneshot.Supernet(space, 10, seed=0)
    largest, smallest = oneshot.extremes(net)
    assert set(largest.values()) == {"nor_conv_3x3"} and set(smallest.values()) == {"skip_connect"}
    kids = oneshot.step_children(net, _config(n_random=2), seed=0, global_step=7)
    assert kids[:2] == [largest, smallest] and len(kids) == 4
    assert kids == oneshot.step_children(net, _config(n_random=2), seed=0, global_step=7)
    assert kids[2:] != oneshot.step_children(net, _config(n_random=2), seed=0, global_step=8)[2:]
    spos = oneshot.step_children(net, _config(sandwich=False), seed=0, global_step=7)
    assert len(spos) == 1 and space.is_valid(spos[0])


def test_training_saves_a_keyed_checkpoint_and_finds_it_again(space: NB201Space, split,
                                                              tmp_path: Path) -> None:
    res = oneshot.train_supernet(space, _config(2), artifact_dir=tmp_path, progress=False,
                                 keep_epochs=[1], split=split)
    assert res.trained_now and res.path == oneshot.checkpoint_path(tmp_path, res.key, 2)
    state = oneshot.load_checkpoint(res.path)
    assert state["meta"]["space"] == space.cache_name and state["progress"]["epoch"] == 2
    kept = oneshot.load_checkpoint(res.path.with_name("e1.pt"))
    assert kept["progress"]["epoch"] == 1 and kept["meta"]["config"]["epochs"] == 1
    assert [h["epoch"] for h in res.history] == [1, 2] and res.cpu_seconds > 0
    init = oneshot.Supernet(space, 4, seed=0).state_dict()
    assert any(not torch.equal(init[k], v) for k, v in state["model"].items())
    # constant learning rate: the kept epoch-1 state *is* the 1-epoch supernet
    again = oneshot.train_supernet(space, _config(1), artifact_dir=tmp_path, progress=False,
                                   split=split)
    assert not again.trained_now and again.path.name == "e1.pt"
    found = oneshot.train_supernet(space, _config(2), artifact_dir=tmp_path, progress=False,
                                   split=split)
    assert not found.trained_now and found.path == res.path
    # a longer run continues the 2-epoch checkpoint instead of starting over
    longer = oneshot.train_supernet(space, _config(3), artifact_dir=tmp_path, progress=False,
                                    split=split)
    assert longer.resumed_from == "e2.pt"
    assert [h["epoch"] for h in longer.history] == [1, 2, 3]


def test_ctrl_c_saves_and_the_rerun_resumes_to_the_same_weights(space: NB201Space, split,
                                                                tmp_path: Path) -> None:
    torch.set_num_threads(1)  # bitwise-reproducible CPU kernels
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job
    straight = oneshot.train_supernet(space, _config(2), artifact_dir=tmp_path / "a",
                                      progress=False, split=split)

    def ctrl_c_at_step_5(step: int, loss: float) -> None:
        if step == 5:
            signal.raise_signal(signal.SIGINT)  # a real SIGINT, as Ctrl-C sends

    with pytest.raises(KeyboardInterrupt):
        oneshot.train_supernet(space, _config(2), artifact_dir=tmp_path / "b", progress=False,
                               split=split, on_step=ctrl_c_at_step_5)
    folder = tmp_path / "b" / "oneshot" / straight.key
    assert not (folder / "e2.pt").exists()
    partial = oneshot.load_checkpoint(folder / "partial-e2.pt")
    assert partial["progress"]["global_step"] == 5  # the step in flight was finished, then saved
    resumed = oneshot.train_supernet(space, _config(2), artifact_dir=tmp_path / "b",
                                     progress=False, split=split)
    assert resumed.trained_now and resumed.resumed_from == "partial-e2.pt"
    assert not (folder / "partial-e2.pt").exists()  # done: the final checkpoint holds it
    a, b = _weights(straight.path), _weights(resumed.path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored


def test_recalibration_re_estimates_bn_statistics_per_child(space: NB201Space, split,
                                                            tmp_path: Path) -> None:
    res = oneshot.train_supernet(space, _config(1), artifact_dir=tmp_path, progress=False,
                                 split=split)
    net, trained_bn, _ = oneshot.load_supernet(res.path, space)
    arch, other = space.sample(2, seed=3)
    images = oneshot.calibration_images(split, 32)
    assert images.shape[0] == 32 and len(set(split.train_y[:4].tolist())) == 1  # class blocks
    assert set(split.train_y[oneshot.interleaved(split.train_y)[:4]].tolist()) == {0, 1, 2, 3}
    net.set_child(arch)
    oneshot.recalibrate(net, images, 16)
    # the stem's BN statistics are now exactly those of the stem conv's outputs on the images
    with torch.no_grad():
        feats = net.net.stem[0](images)
    assert torch.allclose(net.net.stem[1].running_mean, feats.mean((0, 2, 3)), atol=1e-5)
    assert not torch.allclose(trained_bn["net.stem.1.running_mean"], net.net.stem[1].running_mean)
    with_recal = oneshot.evaluate_child(net, arch, split, trained_bn=trained_bn, calib_batches=2,
                                        calib_batch_size=16)
    oneshot.evaluate_child(net, other, split, trained_bn=trained_bn, calib_batches=2,
                           calib_batch_size=16)
    assert oneshot.evaluate_child(net, arch, split, trained_bn=trained_bn, calib_batches=2,
                                  calib_batch_size=16) == with_recal  # no leak between children
    without = oneshot.evaluate_child(net, arch, split, trained_bn=trained_bn,
                                     recalibrate_bn=False)
    assert torch.equal(net.net.stem[1].running_mean, trained_bn["net.stem.1.running_mean"])
    assert without.loss != with_recal.loss and not without.recalibrated
    assert 0.0 <= with_recal.accuracy <= 100.0 and with_recal.recalibrated


def test_run_key_holds_everything_that_determines_the_supernet(space: NB201Space,
                                                               split) -> None:
    base = oneshot.run_key(space, 10, split.identity, 0, _config(2))
    assert oneshot.run_key(space, 10, split.identity, 0, _config(2)) == base
    assert oneshot.run_key(space, 10, split.identity, 0, _config(5)) == base  # length: the file
    other_split = oneshot.split_images(str(TINY["data"]), 96, 16)
    for changed in (oneshot.run_key(NB201Space(channels=8, cells_per_stage=1), 10,
                                    split.identity, 0, _config(2)),
                    oneshot.run_key(space, 100, split.identity, 0, _config(2)),
                    oneshot.run_key(space, 10, other_split.identity, 0, _config(2)),
                    oneshot.run_key(space, 10, split.identity, 1, _config(2)),
                    oneshot.run_key(space, 10, split.identity, 0, _config(2, lr=0.1)),
                    oneshot.run_key(space, 10, split.identity, 0, _config(2, sandwich=False))):
        assert changed != base


def test_the_evaluator_scores_through_the_cache_beside_the_database(space: NB201Space,
                                                                    tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'zcnas.db'}"
    (tmp_path / "db").mkdir()
    cache = zcnas.ScoreCache(url)
    batch = zcnas.load_batch("synthetic", 4, num_classes=4)
    ev = resolve("oneshot", epochs=1, calib_batches=1, progress=False, **TINY)
    assert ev.setup_seconds(space, batch, seed=0, cache=cache) is None  # not trained yet
    arch = space.sample(1, seed=4)[0]
    rec = score_record(space, ev, arch, batch, seed=0, cache=cache)  # trains on first use
    assert rec.ok and 0.0 <= rec.value <= 100.0 and not rec.cached
    ckpt = ev.checkpoint(space, 4, seed=0, cache=cache)
    assert ckpt.is_file() and ckpt.is_relative_to(tmp_path / "db" / "zcnas_artifacts" / "oneshot")
    assert ev.setup_seconds(space, batch, seed=0, cache=cache) > 0
    assert score_record(space, ev, arch, batch, seed=0, cache=cache).cached
    # the key: the training/evaluation parameters, not where the checkpoint lives
    params = json.loads(score_key(space, ev, space.key(arch), batch, 0).params_json)
    assert params["epochs"] == 1 and "artifact_dir" not in params
    moved = resolve("oneshot", epochs=1, calib_batches=1, artifact_dir=str(tmp_path), **TINY)
    assert score_key(space, moved, "k", batch, 0) == score_key(space, ev, "k", batch, 0)
    loss = resolve("oneshot", epochs=1, calib_batches=1, metric="loss", **TINY)
    assert loss.direction == "minimize"
    assert score_key(space, loss, "k", batch, 0) != score_key(space, ev, "k", batch, 0)
    lrec = score_record(space, loss, arch, batch, seed=0, cache=cache)
    assert lrec.ok and lrec.value > 0 and lrec.seconds == rec.seconds  # one pass, both metrics
    cold = resolve("oneshot", epochs=2, train_missing=False, **TINY)
    with pytest.raises(DataError, match="zcnas oneshot train"):
        score_record(space, cold, arch, batch, seed=0, cache=cache)


def test_artifact_folder_and_bad_settings_are_one_line_errors(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(oneshot.ENV_ARTIFACT_DIR, raising=False)
    with pytest.raises(DataError, match="--artifact-dir"):
        oneshot.artifact_root(storage="postgresql+psycopg2://u@127.0.0.1:5432/db")
    monkeypatch.setenv(oneshot.ENV_ARTIFACT_DIR, str(tmp_path))
    assert oneshot.artifact_root(storage="postgresql+psycopg2://u@127.0.0.1:5432/db") == tmp_path
    assert oneshot.artifact_root(tmp_path / "x") == tmp_path / "x"
    with pytest.raises(ZcnasError, match="distill"):
        oneshot.SupernetConfig(distill=2.0)
    with pytest.raises(ZcnasError, match="metric"):
        resolve("oneshot", metric="top5")
    with pytest.raises(DataError, match="holdout"):
        oneshot.split_images("synthetic", 96, 96)


def test_split_is_stratified_and_disjoint(split) -> None:
    assert len(split.train_y) + len(split.held_y) == 96 and split.num_classes == 4
    full = zcnas.load_batch(str(TINY["data"]), 96)
    rows = {tuple(x.flatten()[:8].tolist()) for x in full.inputs}
    train = {tuple(x.flatten()[:8].tolist()) for x in split.train_x}
    held = {tuple(x.flatten()[:8].tolist()) for x in split.held_x}
    assert not train & held and train | held == rows
    for c in range(4):  # 24 per class: 16 train, 8 held out
        assert int((split.train_y == c).sum()) == 16 and int((split.held_y == c).sum()) == 8


@pytest.mark.slow
def test_cli_trains_then_finds_the_supernet(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``zcnas oneshot train`` on the real NB201 space, SPOS, 2 steps of 16 synthetic images."""
    from zcnas.cli import main as cli_main

    argv = ["oneshot", "train", "--space", "nb201", "--epochs", "1", "--spos", "--data",
            "synthetic", "--n-images", "48", "--holdout", "16", "--batch-size", "16",
            "--artifact-dir", str(tmp_path), "--threads", "1", "--no-progress", "--json"]
    assert cli_main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["trained_now"] and Path(first["checkpoint"]).is_file()
    assert first["epochs"] == 1 and first["cpu_seconds"] > 0
    assert cli_main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert not second["trained_now"] and second["checkpoint"] == first["checkpoint"]
    assert cli_main(argv[:-1] + ["--keep-epochs", "x"]) == 2
    assert "--keep-epochs" in capsys.readouterr().err
