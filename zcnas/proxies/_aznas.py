"""AZ-NAS components (Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture
Search", CVPR 2024): expressivity, progressivity, trainability and complexity, each its own proxy.

Semantics follow the authors' NB201 code, ``cvlab-yonsei/AZ-NAS``
``NB201/ZeroShotProxy/compute_az_nas_score.py`` (features from ``NB201/custom/tss_model.py``
``extract_cell_features``; the notebook ``NB201/tss_general.ipynb`` feeds random inputs):

* the network is re-initialised (Conv/Linear He-normal fan_in, BN weight 1 / bias 0) and stays in
  train mode; the input is a standard-normal batch of the batch's shape (no real images, so the
  components are data-free);
* features f_0..f_L are the stem output and the output of every block of ``model.cells``
  (NB201: 15 cells + 2 reduction blocks, L = 17).

One forward and L local backward passes give all three feature-based components; they are
computed once per (model state, RNG state) and shared between the three proxies
(:func:`az_components`).

The authors combine the components over a candidate pool by a non-linear rank aggregation
(``tss_general.ipynb``, cell 8):
``sum_{k in E, P, T, FLOPs} log(rank_k / L)``; that is pool-dependent and lives in the ensembles
layer, not here.

Measured on 100 seeded NB201 cells (``get_space('nb201').sample(100, seed=0)``, CIFAR-10 batch
of 64, init seed 0), Spearman / Kendall vs ``cifar10_test``: expressivity 0.70 / 0.54,
progressivity 0.61 / 0.48, trainability 0.45 / 0.31 (96, 96 and 95 finite cells), complexity
0.76 / 0.60; their log-rank aggregate (failed = lowest rank) 0.93 / 0.78 (the notebook's
all-15,625 output: Kendall 0.741, Spearman 0.913).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from zcnas.data import Batch
from zcnas.proxies._base import Proxy
from zcnas.proxies._features import stage_features
from zcnas.proxies._inits import gaussian_inputs
from zcnas.proxies._inits import kaiming_normal_init
from zcnas.proxies._registry import register_proxy
from zcnas.proxies._shared import SharedResults
from zcnas.proxies._shared import state_fingerprint
from zcnas.proxies._size import FlopsProxy


AZ_PAPER = "Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies for NAS, CVPR 2024"
_CACHE = SharedResults()


def isotropy_entropy(feature: torch.Tensor) -> float:
    """Entropy ``-sum_i p_i log(p_i + 1e-8)`` of the normalised eigenvalues ``p = s / sum(s)`` of
    the channel covariance ``Sigma = X^T X / (B H W)`` of a (B, C, H, W) feature map, with X the
    (B H W, C) matrix of centred pixel features. NaN when the map is constant (sum(s) = 0)."""
    b, c, h, w = feature.shape
    x = feature.detach().permute(0, 2, 3, 1).reshape(b * h * w, c).double()
    x = x - x.mean(dim=0, keepdim=True)
    sigma = x.T @ x / x.shape[0]
    s = torch.linalg.eigvalsh(sigma)
    p = s / s.sum()
    return float((-p * torch.log(p + 1e-8)).sum())


def _local_trainability(f_in: torch.Tensor, f_out: torch.Tensor) -> float:
    """``-s - 1/(s + 1e-6) + 2`` with s the largest singular value of the Jacobian surrogate
    ``M = G_in^T G_out / (B H W)`` of one block (G_out Rademacher, G_in = J^T G_out); -inf for
    an identity block (G_in == G_out)."""
    g_out = torch.bernoulli(torch.full_like(f_out, 0.5)) * 2 - 1
    (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=False)
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    if g_in.shape[2:] != g_out.shape[2:]:
        g_in = F.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
    bo, co, ho, wo = g_out.shape
    gi = g_in.permute(0, 2, 3, 1).reshape(bo * ho * wo, -1).double()
    go = g_out.permute(0, 2, 3, 1).reshape(bo * ho * wo, co).double()
    mat = gi.T @ go / (bo * ho * wo)
    s = float(torch.linalg.svdvals(mat).max())
    return -s - 1.0 / (s + 1e-6) + 2.0


def compute_components(model: nn.Module, batch: Batch) -> dict[str, float]:
    """The three feature components of AZ-NAS (no cache; modifies ``model``):

    * ``expressivity`` = sum_l H(f_l), H = :func:`isotropy_entropy`;
    * ``progressivity`` = min_l (H(f_l) - H(f_{l-1})), l = 1..L;
    * ``trainability`` = mean over blocks l = L..1 of :func:`_local_trainability` (f_{l-1}, f_l).

    NaN (a constant feature map) is reported as -inf, as the authors do; both become a failed
    score in :func:`zcnas.score_record`.
    """
    kaiming_normal_init(model, "fan_in")
    model.train()
    feats = stage_features(model, gaussian_inputs(batch),
                           "AZ-NAS (az_expressivity, az_progressivity, az_trainability)")
    ent = np.array([isotropy_entropy(f) for f in feats])
    expressivity = float(np.sum(ent))
    progressivity = float(np.min(ent[1:] - ent[:-1]))
    scores = [_local_trainability(feats[i - 1], feats[i]) for i in reversed(range(1, len(feats)))]
    trainability = float(np.mean(scores))
    out = {"expressivity": expressivity, "progressivity": progressivity,
           "trainability": trainability}
    return {k: (-math.inf if math.isnan(v) else v) for k, v in out.items()}


def az_components(model: nn.Module, batch: Batch) -> dict[str, float]:
    """:func:`compute_components`, shared (:class:`~zcnas.proxies._shared.SharedResults`) so that
    the three component proxies, each scoring a freshly seeded copy of the same network, run it
    once."""
    key = state_fingerprint(model, batch, "az_components")
    return dict(_CACHE.get_or_compute(key, lambda: compute_components(model, batch)))


class _AZComponent(Proxy):
    component: str
    paper = AZ_PAPER
    uses_data = False
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return az_components(model, batch)[self.component]


@register_proxy("az_expressivity")
class AZExpressivityProxy(_AZComponent):
    """AZ-NAS expressivity s^E = sum_{l=0..L} H(f_l) (higher is better).

    H(f) = -sum_i p_i log(p_i + 1e-8), p_i = s_i / sum_j s_j, s the eigenvalues of the C x C
    covariance of the centred pixel features of f (each of the B*H*W positions is an
    observation of a C-vector): the isotropy of the feature space. f_0 is the stem output,
    f_1..f_L the outputs of the blocks of ``model.cells``; inputs are Gaussian, the net is
    re-initialised He-normal (fan_in) and in train mode (see the module docstring).
    """

    component = "expressivity"


@register_proxy("az_progressivity")
class AZProgressivityProxy(_AZComponent):
    """AZ-NAS progressivity s^P = min_{l=1..L} (H(f_l) - H(f_{l-1})) (higher is better).

    The smallest increase of the feature isotropy H (see ``az_expressivity``) from one stage to
    the next; negative when some block makes the features less isotropic.
    """

    component = "progressivity"


@register_proxy("az_trainability")
class AZTrainabilityProxy(_AZComponent):
    """AZ-NAS trainability s^T = mean_{l=1..L} (2 - s_l - 1/(s_l + 1e-6)) (higher is better).

    For block l, with G_out a Rademacher (+-1) tensor shaped like f_l and G_in = J_l^T G_out its
    backward to f_{l-1} (one vector-Jacobian product; pixel-unshuffled to f_l's resolution at a
    reduction block), s_l is the largest singular value of M_l = G_in^T G_out / (B H W), an
    estimate of the Jacobian's spectral norm; the term is 0 at s_l = 1 and negative otherwise.
    A block that is the identity (G_in == G_out) gives -inf (the authors' marker), which
    ``zcnas.score_record`` records as a failed score (e.g. NB201 cells whose output is a skip of
    their input).
    """

    component = "trainability"


@register_proxy("az_complexity")
class AZComplexityProxy(FlopsProxy):
    """AZ-NAS complexity s^C = FLOPs in millions (higher is better in their aggregation).

    The ``flops`` proxy (MACs of one forward pass of one input), i.e. the NB201 API value the
    authors read. Data-free: only the batch's image shape is used."""

    paper = AZ_PAPER
    uses_data = False
