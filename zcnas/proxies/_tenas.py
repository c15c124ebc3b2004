"""TE-NAS indicators (Chen et al., "Neural Architecture Search on ImageNet in Four GPU Hours: A
Theoretically Inspired Perspective", ICLR 2021): the NTK condition number and the number of
linear regions, as two proxies.

Sources: ``VITA-Group/TENAS`` ``lib/procedures/ntk.py`` (``get_ntk_n``),
``lib/procedures/linear_region_counter.py`` (``LinearRegionCount``, ``Linear_Region_Collector``,
``RandChannel``), ``prune_tenas.py`` / ``prune_launch.py`` (NB201: NTK batch 72, train mode,
3 repeats; regions: 3 batches of 1000 random 3x3 crops); and the standalone-network adaptation
``cvlab-yonsei/AZ-NAS`` ``NB201/ZeroShotProxy/compute_te_nas_score.py`` (one real batch of 64,
one repeat, NaN condition number -> 1e5). TE-NAS's ``init_model`` only knows the names
``kaiming_norm_fanin/fanout`` while its launcher passes ``kaiming_normal`` (+ ``_fanin`` /
``_fanout``), so no re-initialisation happens there: both proxies use the model's default
initialisation, as AZ-NAS's adaptation does.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ScoreError
from zcnas.exceptions import ZcnasError
from zcnas.proxies._base import Proxy
from zcnas.proxies._features import relu_codes
from zcnas.proxies._persample import per_sample_gram
from zcnas.proxies._registry import register_proxy
from zcnas.proxies._swap import distinct_rows


TENAS_PAPER = "Chen et al., TE-NAS, ICLR 2021"
NTK_MODES = ("sample", "batch")


def weight_names(model: nn.Module) -> list[str]:
    """Parameters whose name contains ``weight`` (TE-NAS: conv, BN and linear weights)."""
    return [n for n, p in model.named_parameters() if "weight" in n and p.requires_grad]


def condition_number(gram: torch.Tensor) -> float:
    """``lambda_max / lambda_min`` of a symmetric PSD matrix (``eigvalsh``, float64); inf when
    lambda_min <= 0 (singular), NaN when the matrix is not finite."""
    if not bool(torch.isfinite(gram).all()):
        return math.nan
    eig = torch.linalg.eigvalsh(gram.double())
    lo, hi = float(eig[0]), float(eig[-1])
    return hi / lo if lo > 0 else math.inf


def batch_ntk(model: nn.Module, batch: Batch, names: list[str]) -> torch.Tensor:
    """TE-NAS's NTK: one batched train-mode forward (BatchNorm with the batch's statistics),
    then for each sample i the gradient of sum_c logit_{i,c} w.r.t. ``names`` through that
    graph; K = G G^T (float64). N backward passes."""
    params = dict(model.named_parameters())
    wanted = [params[n] for n in names]
    logits = model(batch.inputs)
    n = logits.shape[0]
    gram = torch.zeros(n, n, dtype=torch.float64, device=logits.device)
    rows = []
    for i in range(n):
        grads = torch.autograd.grad(logits[i].sum(), wanted, retain_graph=i + 1 < n,
                                    allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                               for p, g in zip(wanted, grads)]).double())
    g = torch.stack(rows)
    gram += g @ g.T
    return gram


@register_proxy("tenas_ntk")
class TenasNTKProxy(Proxy):
    """TE-NAS NTK condition number kappa = lambda_max(K) / lambda_min(K) (lower is better).

    K_ij = <g_i, g_j> is the empirical NTK of the batch, g_i the gradient of the sum of sample
    i's logits (labels unused) w.r.t. every parameter whose name contains ``weight`` (conv, BN
    and classifier weights; no biases), at the default initialisation, in train mode.
    kappa is inf (a failed score) when K is singular, NaN when it is not finite (TE-NAS maps
    NaN to 1e5 before ranking).

    ``mode`` sets how BatchNorm sees the batch:

    * ``"batch"``: the authors' computation; one batched forward whose BN layers normalise with
      the whole batch's statistics, then one backward per sample through that graph (N
      backward passes: about N times a plain backward, slow on CPU);
    * ``"sample"`` (default): each sample is its own batch of one, as for GradSign/LGA
      (``torch.func.vmap`` per-sample gradients, about one backward pass in cost). BN then
      normalises each sample with its own spatial statistics, which changes the kernel: on 7
      NB201 cells (CIFAR-10 batch of 64) the two modes' kappa agree only moderately (Spearman
      0.68), so ``"batch"`` is the one to use to reproduce the authors' numbers.

    Measured (``"sample"``) on 100 seeded NB201 cells (CIFAR-10 batch of 64, seed 0): Spearman
    0.74 / Kendall 0.55 vs ``cifar10_test`` (96 finite; disconnected cells are singular).

    Args:
        mode: ``"sample"`` (default) or ``"batch"``.
        chunk_size: samples per vectorised chunk in ``"sample"`` mode (``None``: all).
    """

    paper = TENAS_PAPER
    direction = "minimize"
    uses_labels = False

    def __init__(self, *, mode: Literal["sample", "batch"] = "sample",
                 chunk_size: int | None = None) -> None:
        if mode not in NTK_MODES:
            raise ZcnasError(f"tenas_ntk mode must be one of {', '.join(NTK_MODES)}, got {mode!r}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ZcnasError(f"tenas_ntk chunk_size must be a positive int or null, got {chunk_size!r}")
        self.mode = mode
        self.chunk_size = chunk_size

    def ntk(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The N x N kernel K (float64) of this proxy's ``mode``."""
        model.train()
        names = weight_names(model)
        if self.mode == "batch":
            return batch_ntk(model, batch, names)
        return per_sample_gram(model, batch, chunk_size=self.chunk_size, names=names,
                               objective="logit_sum")

    def compute(self, model: nn.Module, batch: Batch) -> float:
        if len(batch) < 2:
            raise DataError(f"tenas_ntk needs a batch of at least 2 samples, got {len(batch)}; "
                            f"raise --batch-size")
        return condition_number(self.ntk(model, batch))


def random_crops(batch: Batch, n: int, size: int) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` crops (all channels) of uniformly drawn batch images, each
    at a uniform position (no padding), from the global RNG: TE-NAS's ``RandomCrop(size)`` input
    (its ``RandChannel(1)`` is dropped because the network's stem takes every channel)."""
    x = batch.inputs
    _, _, h, w = x.shape
    if size > min(h, w):
        raise DataError(f"tenas_regions crop {size} is larger than the {h}x{w} images; lower crop")
    dev = x.device
    idx = torch.randint(0, x.shape[0], (n,), device=dev)
    top = torch.randint(0, h - size + 1, (n,), device=dev)
    left = torch.randint(0, w - size + 1, (n,), device=dev)
    ar = torch.arange(size, device=dev)
    rows = (top[:, None] + ar)[:, :, None].expand(n, size, size)
    cols = (left[:, None] + ar)[:, None, :].expand(n, size, size)
    imgs = x[idx]  # (n, C, H, W)
    return imgs[torch.arange(n, device=dev)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


@register_proxy("tenas_regions")
class TenasRegionsProxy(Proxy):
    """TE-NAS number of linear regions R = |{ c(x) : x in S }| (higher is better).

    c(x) is the binary activation pattern of input x over every ReLU unit (every element of the
    output of each ``nn.ReLU`` call on a 4-D input; 1 where > 0). S holds ``batches`` x
    ``samples`` random ``crop`` x ``crop`` crops of the batch's images (TE-NAS: 3 x 1000 crops of
    3 x 3); each group of ``samples`` crops is one train-mode forward pass (BatchNorm with that
    group's statistics), and R counts distinct patterns over all of S, so R <= batches x samples.
    Default initialisation (see the module docstring); labels unused. TE-NAS computed it on a
    1-channel, 1-cell "thin" copy of the supernet; here it is the given network, whose stem
    takes all image channels. With a 3 x 3 input the NB201 reduction blocks add a 1 x 1
    shortcut to a 2 x 2 map by broadcasting, as the NB201 network does for odd sizes.

    Measured on 100 seeded NB201 cells (CIFAR-10 batch of 64, seed 0): Spearman 0.23 / Kendall
    0.17 vs ``cifar10_test``; R is close to saturation (median 2,970 of 3,000). On the first 50
    cells its Spearman between init seeds 0 and 1 is 0.20 (between two batches, same seed: 0.86),
    against 0.97 (0.995) for ``tenas_ntk``: the count mostly reflects the random init.

    Args:
        samples: crops per forward pass (default 1000).
        batches: forward passes (default 3).
        crop: crop side in pixels (default 3).
    """

    paper = TENAS_PAPER
    uses_labels = False

    def __init__(self, *, samples: int = 1000, batches: int = 3, crop: int = 3) -> None:
        for name, value in (("samples", samples), ("batches", batches), ("crop", crop)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ZcnasError(f"tenas_regions {name} must be a positive int, got {value!r}")
        self.samples = samples
        self.batches = batches
        self.crop = crop

    def patterns(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The (batches x samples, units) boolean pattern matrix of this proxy."""
        model.train()
        try:
            return torch.cat([relu_codes(model, random_crops(batch, self.samples, self.crop),
                                         "tenas_regions") for _ in range(self.batches)])
        except RuntimeError as err:  # e.g. a patch embedding larger than the crop
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ScoreError(f"tenas_regions feeds {self.crop}x{self.crop} crops and "
                             f"{type(model).__name__} cannot take them ({first}); raise crop") from err

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return float(distinct_rows(self.patterns(model, batch)))
