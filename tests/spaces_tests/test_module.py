"""module_fingerprint: stable across processes, sensitive to structure, blind to values."""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from zcnas.spaces._module import module_fingerprint
from zcnas.testing import models


REPO = Path(__file__).resolve().parents[2]
FACTORIES = {
    "resnet18_small": "models.resnet18_small()",
    "mobilenetv2_small": "models.mobilenetv2_small()",
    "vit_small": "models.vit_small(attention='mha')",
    "convnext_small": "models.convnext_small()",
}


def test_is_32_hex_digits() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", module_fingerprint(models.resnet18_small()))


def test_same_in_another_process_and_hash_seed() -> None:
    code = (
        "from zcnas.testing import models\n"
        "from zcnas.spaces._module import module_fingerprint\n"
        + "".join(f"print(module_fingerprint({expr}))\n" for expr in FACTORIES.values())
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, env=env).stdout.split()
    here = [module_fingerprint(eval(expr, {"models": models})) for expr in FACTORIES.values()]
    assert out == here
    assert len(set(here)) == len(here)


def test_blind_to_values_mode_and_running_statistics() -> None:
    torch.manual_seed(0)
    a = models.resnet18_small()
    torch.manual_seed(1)
    b = models.resnet18_small()
    assert not torch.equal(a.fc.weight, b.fc.weight)
    b(torch.randn(2, 3, 32, 32))  # updates BatchNorm running statistics
    b.eval()
    assert module_fingerprint(a) == module_fingerprint(b)


@pytest.mark.parametrize("make, changed", [
    (lambda: models.resnet18_small(width=8), lambda: models.resnet18_small(width=16)),
    (lambda: models.resnet18_small(), lambda: models.resnet18_small(groups=2)),
    (lambda: models.mobilenetv2_small(), lambda: models.mobilenetv2_small(activation="hardswish")),
    (lambda: models.convnext_small(), lambda: models.convnext_small(activation="silu")),
    (lambda: models.vit_small(), lambda: models.vit_small().double()),
    # the same parameter shapes: only attributes tell these apart
    (lambda: models.vit_small(heads=2), lambda: models.vit_small(heads=4)),
    (lambda: models.vit_small(attention="manual", heads=2),
     lambda: models.vit_small(attention="manual", heads=4)),
    (lambda: models.vit_small(dropout=0.0), lambda: models.vit_small(dropout=0.1)),
    (lambda: nn.Conv2d(4, 4, 3, stride=1), lambda: nn.Conv2d(4, 4, 3, stride=2)),
], ids=["width", "groups", "activation", "activation-convnext", "dtype", "mha-heads",
        "manual-heads", "dropout-p", "stride"])
def test_sensitive_to_structure(make, changed) -> None:  # noqa: ANN001
    assert module_fingerprint(make()) != module_fingerprint(changed())


def test_sensitive_to_tying_freezing_and_buffer_persistence() -> None:
    def tied(tie: bool) -> nn.Module:
        model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
        if tie:
            model[1].weight = model[0].weight
        return model

    assert module_fingerprint(tied(True)) != module_fingerprint(tied(False))
    frozen = tied(False)
    frozen[0].weight.requires_grad_(False)
    assert module_fingerprint(frozen) != module_fingerprint(tied(False))
    a, b = nn.Module(), nn.Module()
    a.register_buffer("x", torch.zeros(2))
    b.register_buffer("x", torch.zeros(2), persistent=False)
    assert module_fingerprint(a) != module_fingerprint(b)


def test_blind_to_forward_code_as_documented() -> None:
    """Two classes of one name and structure whose forward differs hash the same: the caller
    adds the factory's name to the key."""
    def make(sign: float) -> nn.Module:
        class Block(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = nn.Linear(2, 2)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return sign * self.fc(x)

        return Block()

    plus, minus = make(1.0), make(-1.0)
    minus.load_state_dict(plus.state_dict())
    x = torch.ones(1, 2)
    assert torch.equal(minus(x), -plus(x)) and not torch.equal(minus(x), plus(x))
    assert module_fingerprint(plus) == module_fingerprint(minus)
