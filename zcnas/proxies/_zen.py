"""Zen-NAS (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV
2021): the Zen-score, a data-free expressivity measure.

Semantics follow ``idstcv/ZenNAS`` ``ZeroShotProxy/compute_zen_score.py`` (``compute_nas_score``)
and its NB201 adaptation ``cvlab-yonsei/AZ-NAS`` ``NB201/ZeroShotProxy/compute_zen_score.py``
(batch 64, one repeat; Zen-NAS's own default is batch 16, 32 repeats).
"""

from __future__ import annotations

import math

from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._features import pre_gap_features
from zcnas.proxies._inits import gaussian_init
from zcnas.proxies._inits import gaussian_inputs
from zcnas.proxies._registry import register_proxy


_BN = nn.modules.batchnorm._BatchNorm


def _log(v: float) -> float:
    return math.log(v) if v > 0 else -math.inf


def bn_log_scale(model: nn.Module) -> float:
    """``sum_BN log sqrt(mean(running_var))`` over BatchNorm modules with running statistics."""
    total = 0.0
    for m in model.modules():
        if isinstance(m, _BN) and m.running_var is not None:
            total += 0.5 * _log(float(m.running_var.double().mean()))
    return total


@register_proxy("zen")
class ZenProxy(Proxy):
    """Zen-score = mean over repeats of log(Delta) + sum_BN log sqrt(mean running_var).

    Per repeat: the network is re-initialised (Conv/Linear weights N(0, 1), biases 0, BN
    weight 1 / bias 0) and, in train mode without grad, fed a standard-normal batch x and
    x + alpha * eps (eps standard normal, alpha = ``alpha``); f is the feature map entering the
    last ``nn.AdaptiveAvgPool2d`` (pre-GAP) and Delta = mean_n sum_{c,h,w} |f(x)_n - f(x +
    alpha eps)_n|. Each BatchNorm's running variance, updated by those two forward passes with
    the module's own momentum (PyTorch's 0.1 unless set), gives the BN correction term.
    Higher is better. Data-free: x and eps have the batch's shape but not its contents
    (``samples`` images; default the batch size).

    Measured on 100 seeded NB201 cells (batch shape 64, seed 0), Spearman / Kendall vs
    ``cifar10_test``: 0.29 / 0.21 (96 finite; AZ-NAS re-measured Kendall 0.296 on NB201).

    Args:
        alpha: perturbation scale (Zen-NAS's ``mixup_gamma``, default 0.01).
        repeats: re-initialisations averaged (default 1 as AZ-NAS on NB201; Zen-NAS uses 32).
        samples: Gaussian images per pass (``None``: the batch size; Zen-NAS uses 16).
    """

    paper = "Lin et al., Zen-NAS, ICCV 2021"
    uses_data = False
    uses_labels = False

    def __init__(self, *, alpha: float = 0.01, repeats: int = 1, samples: int | None = None) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ZcnasError(f"zen alpha must be a positive number, got {alpha!r}")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ZcnasError(f"zen repeats must be a positive int, got {repeats!r}")
        if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)
                                    or samples < 2):
            raise ZcnasError(f"zen samples must be an int >= 2 or null, got {samples!r}")
        self.alpha = alpha
        self.repeats = repeats
        self.samples = samples

    def compute(self, model: nn.Module, batch: Batch) -> float:
        model.train()
        scores = []
        for _ in range(self.repeats):
            gaussian_init(model)
            x = gaussian_inputs(batch, self.samples)
            eps = gaussian_inputs(batch, self.samples)
            f1 = pre_gap_features(model, x, "zen")
            f2 = pre_gap_features(model, x + self.alpha * eps, "zen")
            delta = float((f1 - f2).abs().reshape(f1.shape[0], -1).sum(1).double().mean())
            scores.append(_log(delta) + bn_log_scale(model))
        return float(sum(scores) / len(scores))
