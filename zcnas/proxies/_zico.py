"""ZiCo (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
ICLR 2023), as in the official SLDGroup/ZiCo ``getzico``."""

from __future__ import annotations

import math

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ScoreError
from zcnas.proxies._base import Proxy
from zcnas.proxies._registry import register_proxy
from zcnas.proxies._util import cross_entropy
from zcnas.proxies._util import weight_params


@register_proxy("zico")
class ZicoProxy(Proxy):
    """ZiCo = sum over Conv2d/Linear layers l of log( sum_w mean_b|g_bw| / std_b(g_bw) ).

    The batch is cut into ``splits`` consecutive equal parts b (default 2, as the official code);
    g_bw is the gradient of weight w of layer l on part b (mean cross-entropy, BN in train mode).
    std is the population std over the parts; weights with zero std are skipped, and a layer
    whose sum is 0 adds nothing. Higher is better. The layers are those of
    :func:`~zcnas.proxies._util.weight_params` (on NAS-Bench-201: every Conv2d and Linear).
    """

    paper = "Li et al., ZiCo, ICLR 2023"

    def __init__(self, *, splits: int = 2) -> None:
        self.splits = splits

    def compute(self, model: nn.Module, batch: Batch) -> float:
        if not isinstance(self.splits, int) or self.splits < 2:
            raise ScoreError(f"zico needs splits >= 2 (gradients over several batches), "
                             f"got {self.splits!r}; pass splits=2")
        n = len(batch)
        if n < self.splits:
            raise DataError(f"zico with splits={self.splits} needs a batch of at least "
                            f"{self.splits} samples, got {n}; raise --batch-size")
        weights = weight_params(model)
        grads: list[list[torch.Tensor]] = [[] for _ in weights]
        for sp in range(self.splits):
            st, en = sp * n // self.splits, (sp + 1) * n // self.splits
            model.zero_grad(set_to_none=True)
            loss = cross_entropy(model(batch.inputs[st:en]), batch.targets[st:en])
            loss.backward()
            for i, w in enumerate(weights):
                g = w.grad
                grads[i].append(torch.zeros_like(w).flatten() if g is None
                                else g.detach().flatten())
        total = 0.0
        for per_split in grads:
            g = torch.stack(per_split).double()
            std = g.std(dim=0, unbiased=False)
            mean_abs = g.abs().mean(dim=0)
            nonzero = std != 0
            tmpsum = float((mean_abs[nonzero] / std[nonzero]).sum())
            if tmpsum != 0:
                total += math.log(tmpsum)
        return total
