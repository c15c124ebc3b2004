"""NASWOT-family proxies (Mellor et al., "Neural Architecture Search without Training"):
``jacob_cov`` (the v1 Jacobian-covariance score) and ``naswot`` (the v2 ReLU-code kernel)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import ScoreError
from zcnas.proxies._base import Proxy
from zcnas.proxies._registry import register_proxy


NASWOT_PAPER = "Mellor et al., Neural Architecture Search without Training, ICML 2021"
#: activation modules named in naswot's error message
_ACTIVATIONS = (nn.ReLU6, nn.Hardtanh, nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.ELU,
                nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.PReLU, nn.SELU, nn.Softplus)


@register_proxy("jacob_cov")
class JacobCovProxy(Proxy):
    """NASWOT v1 score: -sum_i (log(l_i + k) + 1/(l_i + k)), k = 1e-5.

    J_n = d(sum of outputs)/d x_n is each sample's input Jacobian (one backward of the summed
    logits, BN in train mode), flattened; l_i are the eigenvalues (``eigvalsh``) of the N x N
    correlation matrix ``corrcoef`` of the J_n, clipped at 0 against round-off. Since
    log(t) + 1/t >= 1 for t > 0, the score is at most -N (N = batch size); higher is better.
    Constant Jacobians (a net whose output ignores its input) give NaN, i.e. a failed score.
    As zero-cost-nas ``jacob_cov`` / NASLib ``jacov``.
    """

    paper = NASWOT_PAPER + " (arXiv v1); Abdelfattah et al., ICLR 2021"
    uses_labels = False

    def __init__(self, *, k: float = 1e-5) -> None:
        self.k = k

    def compute(self, model: nn.Module, batch: Batch) -> float:
        x = batch.inputs.detach().clone().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        y = model(x)
        y.backward(torch.ones_like(y))
        if x.grad is None:
            return float("nan")
        jacobs = x.grad.detach().reshape(len(x), -1).to("cpu", torch.float64).numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            corrs = np.corrcoef(jacobs)
        if not np.all(np.isfinite(corrs)):
            return float("nan")
        eig = np.clip(np.linalg.eigvalsh(corrs), 0.0, None) + self.k
        return float(-np.sum(np.log(eig) + 1.0 / eig))


@register_proxy("naswot")
class NaswotProxy(Proxy):
    """NASWOT v2 score: log|det K| with K = sum over ReLU layers of c c^T + (1-c)(1-c)^T.

    c (N x units) is the binary code (ReLU input > 0) of each sample at each ``nn.ReLU`` module
    that runs in the forward pass (BN in train mode), so K[i, j] = N_A - Hamming(c_i, c_j) with
    N_A the total number of ReLU units. Computed with ``slogdet`` in float64. By Hadamard's
    inequality the score is at most N * log(N_A); two samples with identical codes give -inf
    (a failed score). Higher is better. As NASLib ``nwot`` (NAS-Bench-Suite-Zero).
    """

    paper = NASWOT_PAPER
    uses_labels = False

    def check_model(self, model: nn.Module) -> None:
        if not any(isinstance(m, nn.ReLU) for m in model.modules()):
            found = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _ACTIVATIONS)})
            raise ScoreError(
                f"naswot needs nn.ReLU activations (it reads their binary codes); this model has "
                f"no nn.ReLU module (its activations: {', '.join(found) or 'none'}); use another "
                f"proxy"
            )

    def compute(self, model: nn.Module, batch: Batch) -> float:
        self.check_model(model)
        n = len(batch)
        kernel = torch.zeros((n, n), dtype=torch.float64, device=batch.inputs.device)
        calls = 0

        def hook(_m: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
            nonlocal kernel, calls
            calls += 1
            codes = (inp[0].detach().reshape(n, -1) > 0).double()
            kernel = kernel + codes @ codes.t() + (1 - codes) @ (1 - codes).t()

        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
        try:
            with torch.no_grad():
                model(batch.inputs)
        finally:
            for h in handles:
                h.remove()
        if calls == 0:
            raise ScoreError("naswot found no nn.ReLU module in the forward pass; it reads the "
                             "binary codes of nn.ReLU modules (use them instead of F.relu)")
        _sign, logdet = torch.linalg.slogdet(kernel.cpu())
        return float(logdet)
