"""Re-initialisation schemes and synthetic inputs that several authors' proxies apply first.

Each function draws from torch's global RNG, which :func:`zcnas.evaluate.compute_score` seeds
before building the model, so a score stays a function of (arch, batch, seed).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from zcnas.data import Batch


_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)

KaimingMode = Literal["fan_in", "fan_out"]


def _reset_norms(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, _NORMS) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def kaiming_normal_init(model: nn.Module, mode: KaimingMode = "fan_in") -> nn.Module:
    """Conv2d/Linear weights ~ He normal (``mode``, ReLU gain), their biases 0; BatchNorm and
    GroupNorm affine weight 1, bias 0. The ``init_model(..., 'kaiming_norm_fanin')`` of AZ-NAS
    and VKDNW, and TE-NAS's ``kaiming_normal`` (fan_out for the NTK, fan_in for regions)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    _reset_norms(model)
    return model


@torch.no_grad()
def gaussian_init(model: nn.Module) -> nn.Module:
    """Conv2d/Linear weights ~ N(0, 1), biases 0; norm affine weight 1, bias 0 (the
    ``network_weight_gaussian_init`` of Zen-NAS and SWAP)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    _reset_norms(model)
    return model


def gaussian_inputs(batch: Batch, n: int | None = None) -> torch.Tensor:
    """``n`` (default: the batch size) standard-normal images of the batch's image shape,
    dtype and device, from the global RNG. Only the batch's shape is used."""
    shape = (len(batch) if n is None else n, *batch.inputs.shape[1:])
    return torch.randn(shape, dtype=batch.inputs.dtype, device=batch.inputs.device)
