"""Helpers shared by the built-in proxies (zero-cost-nas conventions)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The ``nn.Conv2d`` and ``nn.Linear`` modules of ``model``, in ``modules()`` order.

    These are the layers whose ``weight`` zero-cost-nas sums its per-parameter scores over
    (biases and BatchNorm affine parameters are left out).
    """
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the batch (``F.cross_entropy`` default, as in zero-cost-nas)."""
    return nn.functional.cross_entropy(logits, targets)


def remove_batchnorm(model: nn.Module) -> int:
    """Replace every BatchNorm module of ``model`` by ``nn.Identity`` in place.

    The same as zero-cost-nas ``bn=False`` / NASLib ``copynet(bn=False)``, which turn each BN's
    forward into the identity. Returns how many were replaced.
    """
    count = 0
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm):
                setattr(parent, child_name, nn.Identity())
                count += 1
    return count
