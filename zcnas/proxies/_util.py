"""Helpers shared by the built-in proxies (zero-cost-nas conventions)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from zcnas.proxies._persample import conv_linear_weights


#: normalisation layers (synflow replaces them all by the identity)
NORMALIZATION = (_BatchNorm, _InstanceNorm, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
                 nn.RMSNorm)
#: activations bounded above: an all-positive input drives them into saturation
BOUNDED_ACTIVATIONS = (nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.Softsign)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The convolution (``_ConvNd``: Conv1d/2d/3d, transposed) and ``nn.Linear`` modules of
    ``model``, in ``modules()`` order (zero-cost-nas takes Conv2d and Linear; on NAS-Bench-201
    that is the same list). For proxies that hook layer outputs (fisher, flops)."""
    return [m for m in model.modules() if isinstance(m, (_ConvNd, nn.Linear))]


def weight_params(model: nn.Module) -> list[nn.Parameter]:
    """The weights whose per-parameter scores are summed (grad_norm, snip, grasp, synflow, zico):
    the GradSign set :func:`~zcnas.proxies._persample.conv_linear_weights`, i.e. the ``weight``
    of every layer of :func:`weight_layers` plus the input projections of
    ``nn.MultiheadAttention``, which are Linear weights stored as bare parameters. Biases and
    normalisation parameters are left out, as in zero-cost-nas."""
    params = dict(model.named_parameters())
    return [params[n] for n in conv_linear_weights(model)]


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the batch (``F.cross_entropy`` default, as in zero-cost-nas)."""
    return nn.functional.cross_entropy(logits, targets)


def remove_batchnorm(model: nn.Module, kinds: tuple[type[nn.Module], ...] = (_BatchNorm,)) -> int:
    """Replace every BatchNorm module (or every module of ``kinds``) of ``model`` by
    ``nn.Identity`` in place.

    The same as zero-cost-nas ``bn=False`` / NASLib ``copynet(bn=False)``, which turn each BN's
    forward into the identity. Returns how many were replaced.
    """
    count = 0
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, kinds):
                setattr(parent, child_name, nn.Identity())
                count += 1
    return count
