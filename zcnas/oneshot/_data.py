"""The supernet's images: a fixed, stratified split of one labelled image set into a training
part and a held-out part, plus the NB201 training augmentation.

The shared CIFAR-10 sample (``data="cifar10"``) has 2,000 test images, 200 per class, in class
blocks. Split (``holdout=500``): in each class, the first 150 images in the file's order train
the supernet, the last 50 are held out; 1,500 / 500 images in all. That is 3% of CIFAR-10's
50,000 training images that SPOS and BigNAS-style supernets are trained on (BigNAS trains on
ImageNet's 1.28 M), so expect much lower child accuracies than the papers and a noisier ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from zcnas.data import load_batch
from zcnas.exceptions import DataError


#: the version of the split rule (part of every checkpoint key)
SPLIT_VERSION = "1"


@dataclass(frozen=True)
class SplitData:
    """Training and held-out images (normalised, N x C x H x W) and their labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    held_x: torch.Tensor
    held_y: torch.Tensor
    num_classes: int
    identity: str
    source: str

    def describe(self) -> str:
        return (f"{self.source}: {len(self.train_y)} training / {len(self.held_y)} held-out "
                f"images (identity {self.identity})")


def split_images(data: str = "cifar10", n_images: int = 2000, holdout: int = 500,
                 num_classes: int | None = None) -> SplitData:
    """The ``n_images`` images of ``data`` (all of them, in file order), split per class: the
    last ``round(holdout * n_c / n_images)`` images of each class ``c`` are held out.

    Raises:
        DataError: fewer images than asked, or a holdout that leaves a class without
            training or held-out images.
    """
    if not 0 < holdout < n_images:
        raise DataError(f"holdout must be between 1 and n_images - 1 ({n_images - 1}), got "
                        f"{holdout}; pass e.g. holdout=500")
    batch = load_batch(data, n_images, seed=0, num_classes=num_classes)
    y = batch.targets.numpy()
    train_idx, held_idx = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_hold = int(round(holdout * len(idx) / len(y)))
        if n_hold < 1 or n_hold >= len(idx):
            raise DataError(f"class {c} has {len(idx)} images: holdout {holdout} of {len(y)} "
                            f"leaves it no training or no held-out image; change holdout")
        train_idx.append(idx[:-n_hold])
        held_idx.append(idx[-n_hold:])
    tr = torch.from_numpy(np.concatenate(train_idx))
    he = torch.from_numpy(np.concatenate(held_idx))
    ident = hashlib.sha256(f"{batch.identity}|holdout={holdout}|split=v{SPLIT_VERSION}".encode())
    return SplitData(batch.inputs[tr].contiguous(), batch.targets[tr].contiguous(),
                     batch.inputs[he].contiguous(), batch.targets[he].contiguous(),
                     batch.num_classes, ident.hexdigest()[:16], batch.source)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """NB201's training augmentation: random crop with ``pad`` zero padding, random
    horizontal flip (seeded by ``generator``)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The index batches of one epoch: a permutation seeded by (seed, epoch); the last
    incomplete batch is dropped (batch-norm statistics of tiny batches are noise)."""
    if batch_size > n:
        raise DataError(f"batch size {batch_size} is larger than the {n} training images; "
                        f"pass a batch size of {n} or less")
    perm = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))
    return list(perm[: n - n % batch_size].split(batch_size))
