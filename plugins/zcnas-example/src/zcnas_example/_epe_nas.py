"""``epe_nas``: EPE-NAS (Lopes et al., ICANN 2021), per-class correlation of input Jacobians."""

from __future__ import annotations

import math

import torch
from torch import nn
from zcnas import Batch
from zcnas import Proxy


class EpeNasProxy(Proxy):
    """EPE-NAS: how differently the untrained network treats samples of different classes.

    For each input x_i the gradient g_i = d(sum of the network's outputs)/d x_i is flattened.
    For every class c present in the batch, C_c = corrcoef({g_i : y_i = c}) (rows are samples)
    and s_c = sum over the entries of log(|C_c| + k) with k = 1e-5 (a class with one sample
    has C_c = [[1]]). With at most 100 output classes the score is sum_c |s_c|; with more, each
    s_c is first divided by its class size (classes with one sample are left out) and the
    score is sum over class pairs |s_c - s_c'| divided by the number of classes seen. A network
    whose output does not depend on its input has zero gradients, undefined correlations, and a
    NaN score (a recorded failure in zcnas).

    This follows the authors' released search code as packaged in NASLib's ``epe_nas`` measure.
    """

    name = "epe_nas"
    direction = "maximize"
    version = "1"
    paper = "Lopes, Alirezazadeh, Alexandre: EPE-NAS, ICANN 2021 (arXiv:2102.08099)"
    uses_data = True
    uses_labels = True

    K = 1e-5

    def compute(self, model: nn.Module, batch: Batch) -> float:
        x = batch.inputs.detach().clone().requires_grad_(True)
        out = model(x)
        n_classes = int(out.shape[-1])
        (grad,) = torch.autograd.grad(out.sum(), x)
        jac = grad.reshape(len(x), -1).double()
        per_class = []
        for c in torch.unique(batch.targets):
            rows = jac[batch.targets == c]
            if len(rows) == 1:
                if n_classes > 100:
                    continue  # the reference code skips single-sample classes here
                s = math.log(1.0 + self.K)
            else:
                s = float(torch.log(torch.corrcoef(rows).abs() + self.K).sum())
                if n_classes > 100:
                    s /= len(rows)
            per_class.append(s)
        if n_classes <= 100:
            return float(sum(abs(s) for s in per_class))
        total = sum(abs(a - b) for a in per_class for b in per_class)
        return float(total / len(per_class))
