"""zcnas-myproxy: one zero-cost proxy for zcnas, registered by the ``zcnas.proxies`` entry point.

Contract (see ``zcnas.proxies.Proxy``): zcnas seeds torch, builds a fresh untrained model in
train mode on the batch's device, and calls ``compute(model, batch)`` once. Return a float;
NaN/inf become a recorded failure. You may change the model (it is thrown away), but keep
hyper-parameters keyword-only and stored unchanged under their own names: ``get_params()``
reads them back into the score-cache key. Bump ``version`` whenever the numbers change.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from zcnas import Batch
from zcnas import Proxy


__version__ = "0.1.0"
__all__ = ["MyProxy"]


class MyProxy(Proxy):
    """Standard deviation of the untrained network's outputs over one batch (label-free).

    Args:
        log: return ``log(std)`` instead of ``std``.
    """

    name = "myproxy"  # must equal the entry-point name in pyproject.toml
    direction = "maximize"  # or "minimize" if a lower score predicts a better network
    version = "1"
    paper = "placeholder: cite the paper here"
    uses_data = True  # False if the score ignores the images (cache keys then ignore the batch)
    uses_labels = False  # the targets are not used

    def __init__(self, *, log: bool = False) -> None:
        self.log = log  # no work here: constructors only store configuration

    def compute(self, model: nn.Module, batch: Batch) -> float:
        with torch.no_grad():
            std = float(model(batch.inputs).std())
        return math.log(std) if self.log else std
