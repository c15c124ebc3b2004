"""Child evaluation with inherited weights: batch-norm recalibration and held-out metrics.

A supernet's batch-norm running statistics are an average over all the children trained, so
they fit no child in particular. SPOS (Guo et al., ECCV 2020, section 3.3) and BigNAS
(Yu et al., ECCV 2020, section 3.2) therefore recompute them for each child on a few training
batches before evaluating it: here every BN layer's statistics are reset and re-estimated as
the plain average (``momentum=None``) over ``calib_batches`` batches of training images
(no augmentation, no gradient), in train mode; the child is then evaluated in eval mode.
Without recalibration the statistics stored at the end of training are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from zcnas.oneshot._data import SplitData
from zcnas.spaces import Arch


_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class ChildResult:
    """Held-out accuracy (%) and mean cross-entropy of one child."""

    accuracy: float
    loss: float
    recalibrated: bool


def bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every batch-norm buffer (running mean/var, batches tracked)."""
    return {f"{name}.{b}": getattr(m, b).detach().clone()
            for name, m in model.named_modules() if isinstance(m, _BN)
            for b in ("running_mean", "running_var", "num_batches_tracked")
            if getattr(m, b, None) is not None}


def load_bn_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    for name, m in model.named_modules():
        if isinstance(m, _BN):
            for b in ("running_mean", "running_var", "num_batches_tracked"):
                key = f"{name}.{b}"
                if key in state:
                    getattr(m, b).copy_(state[key])


@torch.no_grad()
def recalibrate(model: nn.Module, images: torch.Tensor, batch_size: int) -> None:
    """Reset every BN layer's statistics and re-estimate them on ``images`` (train mode,
    cumulative average over the batches)."""
    saved: list[tuple[nn.Module, Any]] = []
    for m in model.modules():
        if isinstance(m, _BN) and m.track_running_stats:
            m.reset_running_stats()
            saved.append((m, m.momentum))
            m.momentum = None
    model.train()
    for x in images.split(batch_size):
        model(x)
    for m, momentum in saved:
        m.momentum = momentum


@torch.no_grad()
def held_out_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int) -> tuple[float, float]:
    """(accuracy %, mean cross-entropy) of ``model`` in eval mode."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        logits = model(xb)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return 100.0 * correct / len(y), loss_sum / len(y)


def interleaved(y: torch.Tensor) -> torch.Tensor:
    """An order of the samples with the classes interleaved (the first sample of every class,
    then the second, ...): the split is in class blocks, so a plain prefix holds one class."""
    ranks = torch.empty_like(y)
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        ranks[idx] = torch.arange(len(idx))
    return torch.argsort(ranks * (int(y.max()) + 1) + y, stable=True)


def calibration_images(split: SplitData, n: int) -> torch.Tensor:
    """The first ``n`` training images in :func:`interleaved` order."""
    return split.train_x[interleaved(split.train_y)[:n]]


def evaluate_child(supernet: nn.Module, arch: Arch, split: SplitData, *, trained_bn:
                   dict[str, torch.Tensor], recalibrate_bn: bool = True, calib_batches: int = 4,
                   calib_batch_size: int = 64, batch_size: int = 250,
                   calib_images: torch.Tensor | None = None) -> ChildResult:
    """Held-out accuracy and loss of child ``arch`` with the supernet's weights.

    ``trained_bn`` (:func:`bn_state` of the loaded supernet) is restored first, so children do
    not see each other's recalibrated statistics.
    """
    supernet.set_child(arch)  # type: ignore[operator]
    load_bn_state(supernet, trained_bn)
    if recalibrate_bn and calib_batches > 0:
        images = calib_images if calib_images is not None else calibration_images(
            split, calib_batches * calib_batch_size)
        recalibrate(supernet, images, calib_batch_size)
    acc, loss = held_out_metrics(supernet, split.held_x, split.held_y, batch_size)
    return ChildResult(acc, loss, recalibrate_bn and calib_batches > 0)
