"""``l2_norm``: sum over Conv2d and Linear layers of the L2 (Frobenius) norm of the weight."""

from __future__ import annotations

import torch
from torch import nn
from zcnas import Batch
from zcnas import Proxy


class L2NormProxy(Proxy):
    """Summed L2 norm of the Conv2d/Linear weights at initialisation (data-free).

    score = sum over every ``nn.Conv2d`` and ``nn.Linear`` module m of ||m.weight||_2 (the
    Frobenius norm of the whole weight tensor; biases and BatchNorm are left out), as the
    ``l2_norm`` measure of NASLib / NAS-Bench-Suite-Zero. With PyTorch's default initialisation
    it grows with the number and width of the layers, so it behaves like a size proxy.
    """

    name = "l2_norm"
    direction = "maximize"
    version = "1"
    paper = "Krishnakumar et al., NAS-Bench-Suite-Zero, NeurIPS 2022 Datasets and Benchmarks"
    uses_data = False
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        with torch.no_grad():
            norms = [m.weight.norm().item() for m in model.modules()
                     if isinstance(m, (nn.Conv2d, nn.Linear))]
        return float(sum(norms))
