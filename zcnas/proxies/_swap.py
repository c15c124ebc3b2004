"""SWAP (Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS", ICLR 2024):
the number of distinct sample-wise activation patterns of the ReLU units.

Semantics follow the authors' code ``pym1024/SWAP`` ``src/metrics/swap.py``
(``SampleWiseActivationPatterns``, ``cal_regular_factor``), ``correlation.py`` (16 real images,
32 repeats, Gaussian re-initialisation before each) and ``src/utils/utilities.py``
(``count_parameters`` in thousands, ``network_weight_gaussian_init``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._features import relu_codes
from zcnas.proxies._inits import gaussian_init
from zcnas.proxies._registry import register_proxy


def distinct_rows(codes: torch.Tensor) -> int:
    """Number of distinct rows of a boolean matrix (rows packed into int64 words first)."""
    rows, width = codes.shape
    if rows == 0:
        return 0
    words = []
    for start in range(0, width, 62):
        block = codes[:, start:start + 62].long()
        weights = 2 ** torch.arange(block.shape[1], device=codes.device, dtype=torch.long)
        words.append((block * weights).sum(dim=1))
    if len(words) == 1:
        return int(torch.unique(words[0]).numel())
    return int(torch.unique(torch.stack(words, dim=1), dim=0).shape[0])


def swap_count(codes: torch.Tensor) -> int:
    """SWAP of an (N samples, units) binary code matrix: the number of distinct unit columns,
    i.e. of distinct length-N patterns of one unit across the samples (at most 2^N)."""
    n = codes.shape[0]
    if n > 62:
        return distinct_rows(codes.T)
    packed = torch.zeros(codes.shape[1], dtype=torch.long, device=codes.device)
    for i in range(n):  # bit i of a unit's word = its code on sample i
        packed |= codes[i].long() << i
    if n <= 20:
        return int(torch.count_nonzero(torch.bincount(packed, minlength=1)))
    return int(torch.unique(packed).numel())


@register_proxy("swap")
class SwapProxy(Proxy):
    """SWAP-Score = mean over ``repeats`` Gaussian re-inits of |{ c_u : u in units }| (maximize).

    For each ReLU unit u (every element of the output of every ``nn.ReLU`` call on a 4-D input,
    i.e. channel x position), c_u in {0,1}^N is its sample-wise activation pattern
    (1 where the ReLU output is > 0) over the first N = ``samples`` images of the batch; the
    score counts the distinct patterns (at most min(#units, 2^N)). Before each repeat the
    network is re-initialised (Conv/Linear weights N(0, 1), biases 0, BN weight 1 / bias 0) and
    run in train mode. Labels are not used.

    ``regular=True`` multiplies each count by the authors' model-size regulariser
    ``exp(-(Theta - mu)^2 / sigma)``, Theta the number of parameters in thousands; ``mu`` and
    ``sigma`` (same units, sigma in thousands squared) are then required. It is one proxy with a
    parameter, not two: the regulariser only rescales the count and its (mu, sigma) are
    space-specific choices that the cache key must record anyway.

    Measured on 100 seeded NB201 cells (the first 16 images of the CIFAR-10 batch of 64, seed 0;
    unregularised), Spearman / Kendall vs ``cifar10_test``: 0.82 / 0.64.

    Args:
        samples: images per pattern (default 16, the authors' ``--input_samples``).
        repeats: re-initialisations averaged (default 32, ``--repeats``).
        regular, mu, sigma: the model-size regularisation (off by default).
    """

    paper = "Peng et al., SWAP-NAS, ICLR 2024"
    uses_labels = False

    def __init__(self, *, samples: int = 16, repeats: int = 32, regular: bool = False,
                 mu: float | None = None, sigma: float | None = None) -> None:
        for name, value in (("samples", samples), ("repeats", repeats)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ZcnasError(f"swap {name} must be a positive int, got {value!r}")
        if regular and (mu is None or sigma is None or not sigma > 0):
            raise ZcnasError("swap regular=True needs mu (thousands of parameters) and sigma > 0; "
                             "pass e.g. mu=1000, sigma=1000000")
        self.samples = samples
        self.repeats = repeats
        self.regular = regular
        self.mu = mu
        self.sigma = sigma

    def regular_factor(self, model: nn.Module) -> float:
        """``exp(-(params/1e3 - mu)^2 / sigma)`` (1 when ``regular`` is off)."""
        if not self.regular:
            return 1.0
        assert self.mu is not None and self.sigma is not None
        kparams = sum(p.numel() for p in model.parameters()) / 1e3
        return math.exp(-((kparams - self.mu) ** 2) / self.sigma)

    def compute(self, model: nn.Module, batch: Batch) -> float:
        if len(batch) < self.samples:
            raise DataError(f"swap with samples={self.samples} needs a batch of at least "
                            f"{self.samples} images, got {len(batch)}; lower samples")
        inputs = batch.inputs[: self.samples]
        factor = self.regular_factor(model)
        model.train()
        counts = []
        for _ in range(self.repeats):
            gaussian_init(model)
            counts.append(swap_count(relu_codes(model, inputs, "swap")))
        return float(sum(counts) / len(counts)) * factor
