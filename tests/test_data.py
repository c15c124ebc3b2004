"""Data batches: the shared CIFAR-10 sample, synthetic data, user npz files and folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from zcnas.data import CIFAR_MEAN
from zcnas.data import CIFAR_STD
from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import DataError


def test_cifar10_batch_is_reproducible(shared_data: Path) -> None:
    a = load_batch("cifar10", batch_size=32, seed=0)
    b = load_batch("cifar10", batch_size=32, seed=0)
    assert torch.equal(a.inputs, b.inputs)
    assert torch.equal(a.targets, b.targets)
    assert a.identity == b.identity
    assert a.inputs.shape == (32, 3, 32, 32)
    assert a.inputs.dtype == torch.float32
    assert a.targets.dtype == torch.int64
    assert a.num_classes == 10
    assert 0 <= int(a.targets.min()) and int(a.targets.max()) <= 9


def test_identity_changes_with_seed_and_size(shared_data: Path) -> None:
    a = load_batch("cifar10", batch_size=32, seed=0)
    assert load_batch("cifar10", batch_size=32, seed=1).identity != a.identity
    assert load_batch("cifar10", batch_size=16, seed=0).identity != a.identity
    assert load_batch("cifar10", batch_size=32, seed=0, num_classes=100).identity != a.identity


def test_normalisation_is_nb201s(shared_data: Path) -> None:
    """NB201 normalises CIFAR with mean (125.3, 123.0, 113.9)/255 and std (63.0, 62.1, 66.7)/255;
    on real CIFAR-10 images the normalised channels have mean ~0 and std ~1."""
    assert CIFAR_MEAN == pytest.approx((0.4914, 0.4824, 0.4467), abs=1e-3)
    assert CIFAR_STD == pytest.approx((0.2471, 0.2435, 0.2616), abs=1e-3)
    x = load_batch("cifar10", batch_size=1000, seed=0).inputs
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=0.1), mean
    assert torch.allclose(std, torch.ones(3), atol=0.1), std


def test_cifar10_labels_are_balanced_enough(shared_data: Path) -> None:
    y = load_batch("cifar10", batch_size=500, seed=0).targets
    counts = torch.bincount(y, minlength=10)
    assert int(counts.min()) > 20  # 50 expected per class


def test_synthetic() -> None:
    a = load_batch("synthetic", batch_size=8, seed=0)
    assert torch.equal(a.inputs, load_batch("synthetic", batch_size=8, seed=0).inputs)
    assert a.identity == load_batch("synthetic", batch_size=8, seed=0).identity
    assert a.identity != load_batch("synthetic", batch_size=8, seed=1).identity
    c100 = load_batch("synthetic", batch_size=64, seed=0, num_classes=100)
    assert c100.num_classes == 100
    assert int(c100.targets.max()) < 100
    assert a.inputs.shape == (8, 3, 32, 32)


def _write_npz(path: Path, n: int = 20, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % classes
    np.savez(path, x=x, y=y)
    return x, y


def test_npz_source(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    x, y = _write_npz(path)
    batch = load_batch(f"npz:{path}", batch_size=8, seed=0)
    assert batch.num_classes == 4
    assert batch.inputs.shape == (8, 3, 32, 32)
    assert batch.identity == load_batch(f"npz:{path}", batch_size=8, seed=0).identity
    assert batch.identity != load_batch(f"npz:{path}", batch_size=8, seed=1).identity
    # the images are normalised exactly like the CIFAR sample: pick them back by label order
    all20 = load_batch(f"npz:{path}", batch_size=20, seed=0)
    raw = torch.from_numpy(x).float().div(255).permute(0, 3, 1, 2)
    expected = (raw - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(
        1, 3, 1, 1)
    assert torch.allclose(all20.inputs, expected, atol=1e-6)
    assert torch.equal(all20.targets, torch.from_numpy(y).long())


def test_npz_float_images_are_taken_as_is(tmp_path: Path) -> None:
    path = tmp_path / "float.npz"
    x = np.linspace(-1, 1, 4 * 8 * 8 * 3, dtype=np.float32).reshape(4, 8, 8, 3)
    np.savez(path, x=x, y=np.array([0, 1, 2, 1]))
    batch = load_batch(f"npz:{path}", batch_size=4)
    assert torch.allclose(batch.inputs, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert batch.num_classes == 3


def test_npz_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_batch(f"npz:{tmp_path / 'missing.npz'}")
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="'x'.*'y'"):
        load_batch(f"npz:{bad}")
    path = tmp_path / "small.npz"
    _write_npz(path, n=10)
    with pytest.raises(DataError, match="--batch-size 10 or less"):
        load_batch(f"npz:{path}", batch_size=11)


def test_folder_source(tmp_path: Path) -> None:
    image = pytest.importorskip("PIL.Image", reason="folder sources need Pillow")
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            pixels = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
            image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
    batch = load_batch(f"folder:{tmp_path}", batch_size=6, seed=0)
    assert batch.inputs.shape == (6, 3, 32, 32)
    assert sorted(batch.targets.tolist()) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(DataError, match="does not exist"):
        load_batch(f"folder:{tmp_path / 'nope'}")


def test_missing_shared_data_names_zcnas_data(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZCNAS_DATA", str(tmp_path))
    with pytest.raises(DataError, match="ZCNAS_DATA") as err:
        load_batch("cifar10")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("size", [0, -3])
def test_batch_size_must_be_positive(size: int) -> None:
    # a negative size used to slice the sample from the end (1,997 images for -3)
    for source in ("synthetic", "cifar10"):
        with pytest.raises(DataError, match="at least 1"):
            load_batch(source, batch_size=size)


def test_unknown_source() -> None:
    with pytest.raises(DataError, match="unknown data source 'imagenet'.*npz:<file>"):
        load_batch("imagenet")


def test_batch_split_and_to_keep_the_identity() -> None:
    batch = load_batch("synthetic", batch_size=10, seed=0)
    parts = batch.split(4)
    assert [len(p) for p in parts] == [4, 4, 2]
    assert all(p.identity == batch.identity for p in parts)
    assert torch.equal(torch.cat([p.inputs for p in parts]), batch.inputs)
    assert batch.to("cpu").identity == batch.identity


def test_identity_is_content_based() -> None:
    x = torch.zeros(2, 3, 4, 4)
    y = torch.tensor([0, 1])
    assert Batch(x, y, 10, "a").identity == Batch(x.clone(), y.clone(), 10, "b").identity
    assert Batch(x, y, 10, "a").identity != Batch(x + 1, y, 10, "a").identity
    assert Batch(x, y, 10, "a").identity != Batch(x, y.flip(0), 10, "a").identity


# --- bad batches are rejected where they are made ---------------------------------------------------
def _nan_pixel(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[0, 1, 2, 3] = float("nan")
    return x


@pytest.mark.parametrize("inputs, targets, classes, message", [
    (lambda x: torch.full_like(x, float("nan")), lambda y: y, 10, r"16384 non-finite input"),
    (lambda x: torch.full_like(x, float("inf")), lambda y: y, 10, r"16384 non-finite input"),
    (_nan_pixel, lambda y: y, 10, r"1 non-finite input value"),
    (lambda x: x[:0], lambda y: y[:0], 10, r"is empty"),
    (lambda x: x, lambda y: torch.arange(4) + 6, 3, r"labels range 6\.\.9 but num_classes is 3; "
                                                    r"pass --num-classes 10"),
    (lambda x: x, lambda y: y - 5, 10, r"labels range -5\.\."),
    (lambda x: x, lambda y: y.float(), 10, r"targets must be integer class labels"),
    (lambda x: x, lambda y: y[:3], 10, r"one label per sample \(4 inputs\)"),
    (lambda x: x, lambda y: y, 0, r"num_classes must be a positive integer"),
], ids=["all-nan", "all-inf", "one-nan-pixel", "empty", "labels-above", "labels-negative",
        "float-labels", "too-few-labels", "no-classes"])
def test_bad_batches_are_one_line_data_errors(inputs, targets, classes: int,  # noqa: ANN001
                                              message: str) -> None:
    x = torch.randn(4, 4, 32, 32)
    y = torch.tensor([0, 1, 2, 1])
    with pytest.raises(DataError, match=message) as info:
        Batch(inputs(x), targets(y), classes, "test")
    assert "\n" not in str(info.value)


def test_bad_data_files_are_rejected_when_loaded(tmp_path: Path) -> None:
    path = tmp_path / "nan.npz"
    x = np.zeros((4, 8, 8, 3), dtype=np.float32)
    x[1, 2, 3, 0] = np.nan
    np.savez(path, x=x, y=np.array([0, 1, 2, 1]))
    with pytest.raises(DataError, match="1 non-finite input value"):
        load_batch(f"npz:{path}", batch_size=4)
    labels = tmp_path / "labels.npz"
    _write_npz(labels, n=20, classes=10)
    with pytest.raises(DataError, match="num_classes is 3; pass --num-classes 10"):
        load_batch(f"npz:{labels}", batch_size=20, num_classes=3)
