"""Data batches for proxies: the shared CIFAR-10 sample, synthetic data, and user npz/folders.

A :class:`Batch` is one labelled minibatch plus its identity (a hash of its contents), which is
part of every score-cache key. Sources never download anything.

Source names (``load_batch(source=...)``):
    ``cifar10``        the 2,000 real CIFAR-10 test images in ``$ZCNAS_DATA/images`` (default
                       ``../shared/data`` beside the checkout), normalised as NAS-Bench-201 trains.
    ``synthetic``      seeded Gaussian images and uniform labels (tests, data-free runs).
    ``npz:<path>``     a user ``.npz`` with ``x`` (N,H,W,C uint8 or float) and ``y`` (N,) labels.
    ``folder:<path>``  a user folder of ``<class>/<image>`` files (needs Pillow).
"""

from __future__ import annotations

from dataclasses import InitVar
from dataclasses import dataclass
from dataclasses import field
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from zcnas.exceptions import DataError


# NAS-Bench-201 normalisation (xautodl get_datasets, cifar10/cifar100)
CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
CIFAR10_FILE = "images/cifar10_test_jpeg2000.npz"


def data_dir() -> Path:
    """The shared data folder: ``$ZCNAS_DATA`` or ``../shared/data`` beside the repo."""
    env = os.environ.get("ZCNAS_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "data"


@dataclass(frozen=True)
class Batch:
    """One labelled minibatch, checked once when it is made.

    Attributes:
        inputs: float tensor (N, C, H, W), already normalised.
        targets: int64 tensor (N,).
        num_classes: number of classes of the task (sets the classifier width).
        identity: short content hash; equal batches have equal identities.
        source: where it came from (for records).

    A batch that no proxy can score meaningfully raises ``DataError`` (one line naming the
    fix): no samples, non-finite inputs (NaN/inf would give silent 0.0 or shifted scores),
    targets that are not integers, not one per sample, or outside ``0 .. num_classes-1``.
    Batches derived from a checked one (:meth:`to`, :meth:`split`) are not checked again.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    num_classes: int
    source: str
    identity: str = field(default="")
    check: InitVar[bool] = True

    def __post_init__(self, check: bool) -> None:
        if check:
            validate_batch(self.inputs, self.targets, self.num_classes, self.source)
        if not self.identity:
            ident = batch_identity(self.inputs, self.targets, self.num_classes)
            object.__setattr__(self, "identity", ident)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def to(self, device: str | torch.device) -> Batch:
        return Batch(
            self.inputs.to(device), self.targets.to(device), self.num_classes, self.source,
            self.identity, check=False,
        )

    def resized(self, height: int, width: int) -> Batch:
        """The batch's images bilinearly resized to ``height`` x ``width`` (a new identity);
        itself if they already have that size."""
        if tuple(self.inputs.shape[2:]) == (height, width):
            return self
        import torch.nn.functional as F

        inputs = F.interpolate(self.inputs, size=(height, width), mode="bilinear",
                               align_corners=False)
        return Batch(inputs.contiguous(), self.targets, self.num_classes,
                     f"{self.source}@{height}x{width}")

    def with_input_size(self, size: tuple[int, int, int] | None) -> Batch:
        """The batch resized to ``size`` = (channels, height, width) (None: itself); a
        :class:`DataError` if the channel count differs (resizing cannot change it)."""
        if size is None:
            return self
        if size[0] != self.inputs.shape[1]:
            raise DataError(f"input size {','.join(map(str, size))}: the {self.source} images "
                            f"have {self.inputs.shape[1]} channels; use --data synthetic for "
                            f"other inputs")
        return self.resized(size[1], size[2])

    def split(self, chunk: int) -> list[Batch]:
        """Consecutive sub-batches of at most ``chunk`` samples (same identity as their parent)."""
        return [
            Batch(x, y, self.num_classes, self.source, self.identity, check=False)
            for x, y in zip(self.inputs.split(chunk), self.targets.split(chunk))
        ]


def validate_batch(inputs: torch.Tensor, targets: torch.Tensor, num_classes: int,
                   source: str = "") -> None:
    """Raise ``DataError`` (one line naming the fix) unless ``inputs``/``targets`` form a
    usable batch of ``num_classes`` classes (see :class:`Batch`)."""
    where = f"batch from {source}" if source else "batch"
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise DataError(f"{where}: inputs and targets must be torch tensors, got "
                        f"{type(inputs).__name__} and {type(targets).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise DataError(f"{where}: num_classes must be a positive integer, got {num_classes!r}; "
                        f"pass --num-classes N")
    n = int(inputs.shape[0]) if inputs.dim() > 0 else 0
    if n == 0 or inputs.numel() == 0:
        raise DataError(f"{where} is empty (inputs of shape {tuple(inputs.shape)}); give at "
                        f"least one sample, e.g. --batch-size 64")
    if targets.dim() != 1 or int(targets.shape[0]) != n:
        raise DataError(f"{where}: targets of shape {tuple(targets.shape)} do not give one label "
                        f"per sample ({n} inputs); pass targets of shape ({n},)")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise DataError(f"{where}: targets must be integer class labels, got {targets.dtype}; "
                        f"convert them with .long()")
    if not inputs.is_floating_point():
        raise DataError(f"{where}: inputs must be a float tensor, got {inputs.dtype}; "
                        f"normalise the images first (e.g. load_batch does)")
    bad = int((~torch.isfinite(inputs)).sum())
    if bad:
        raise DataError(f"{where} has {bad} non-finite input value(s) (NaN/inf) of "
                        f"{inputs.numel()}; clean or re-export the data")
    low, high = int(targets.min()), int(targets.max())
    if low < 0 or high >= num_classes:
        raise DataError(f"{where}: labels range {low}..{high} but num_classes is {num_classes}; "
                        f"pass --num-classes {max(high + 1, num_classes)} or fix the labels")


def batch_identity(inputs: torch.Tensor, targets: torch.Tensor, num_classes: int) -> str:
    """sha256 of the batch contents (float32 inputs, int64 targets, shape, classes), 16 hex."""
    h = hashlib.sha256()
    h.update(f"classes={num_classes}".encode())
    x = inputs.detach().to("cpu", torch.float32).contiguous().numpy()
    h.update(str(tuple(x.shape)).encode())
    h.update(x.tobytes())
    h.update(targets.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _normalise(x_uint8_hwc: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(x_uint8_hwc)).float().div_(255.0)
    x = x.permute(0, 3, 1, 2).contiguous()
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _pick(n_total: int, batch_size: int, seed: int) -> np.ndarray:
    if batch_size > n_total:
        raise DataError(
            f"batch size {batch_size} is larger than the {n_total} samples available; "
            f"pass --batch-size {n_total} or less"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n_total)[:batch_size])


def _load_npz(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(
            f"{what} not found at {path}; set ZCNAS_DATA to the shared data folder "
            f"or pass --data npz:<file> with arrays x and y"
        )
    with np.load(path, allow_pickle=False) as f:
        if "x" not in f or "y" not in f:
            raise DataError(f"{path} must hold arrays 'x' (N,H,W,C) and 'y' (N,); it has {list(f)}")
        return f["x"], f["y"]


def _from_arrays(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, source: str,
                 num_classes: int | None) -> Batch:
    idx = _pick(len(x), batch_size, seed)
    xs = x[idx]
    if xs.dtype == np.uint8:
        inputs = _normalise(xs)
    else:
        inputs = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32)).permute(0, 3, 1, 2)
    targets = torch.from_numpy(y[idx].astype(np.int64))
    classes = int(num_classes or (int(y.max()) + 1))
    return Batch(inputs.contiguous(), targets, classes, source)


def synthetic_batch(batch_size: int = 64, seed: int = 0, num_classes: int = 10,
                    image_size: int = 32, channels: int = 3, width: int | None = None) -> Batch:
    """Seeded Gaussian images (``channels`` x ``image_size`` x ``width``, square by default)
    with uniform random labels."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch_size, channels, image_size, width or image_size, generator=g)
    targets = torch.randint(0, num_classes, (batch_size,), generator=g)
    return Batch(inputs, targets, num_classes, f"synthetic(seed={seed})")


def _folder_arrays(root: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - pillow comes with matplotlib
        raise DataError("folder sources need Pillow: pip install pillow") from exc
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; pass folder:<dir of class subfolders>")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            images.append(np.asarray(Image.open(f).convert("RGB").resize((32, 32))))
            labels.append(label)
    if not images:
        raise DataError(f"no images under {root}; expected {root}/<class>/<image files>")
    return np.stack(images).astype(np.uint8), np.asarray(labels)


def load_batch(source: str = "cifar10", batch_size: int = 64, seed: int = 0,
               num_classes: int | None = None) -> Batch:
    """Load one seeded, reproducible minibatch from ``source`` (see module docstring).

    The same (source, batch_size, seed) always gives the same batch and identity.
    ``num_classes`` overrides the classifier width (e.g. 100 to score CIFAR-100 networks on
    CIFAR-10 images); by default it is the dataset's number of classes.
    """
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, got {batch_size}; pass --batch-size 64")
    if source == "cifar10":
        x, y = _load_npz(data_dir() / CIFAR10_FILE, "the shared CIFAR-10 sample")
        return _from_arrays(x, y, batch_size, seed, "cifar10", num_classes or 10)
    if source == "synthetic":
        return synthetic_batch(batch_size, seed, num_classes or 10)
    if source.startswith("npz:"):
        path = Path(source[4:]).expanduser()
        x, y = _load_npz(path, "npz data file")
        return _from_arrays(x, y, batch_size, seed, source, num_classes)
    if source.startswith("folder:"):
        x, y = _folder_arrays(Path(source[7:]).expanduser())
        return _from_arrays(x, y, batch_size, seed, source, num_classes)
    raise DataError(
        f"unknown data source {source!r}; use cifar10, synthetic, npz:<file> or folder:<dir>"
    )
