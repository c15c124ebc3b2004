"""Intermediate features that several proxies read: stage outputs, ReLU outputs, pre-GAP maps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from zcnas.exceptions import ScoreError


def stage_features(model: nn.Module, inputs: torch.Tensor, who: str) -> list[torch.Tensor]:
    """``[stem(x), cell_1(.), ..., cell_L(.)]``: the stem output and the output of every block
    of ``model.cells`` in order (the AZ-NAS ``extract_cell_features`` of an NB201 network, whose
    ``cells`` holds the 15 cells and the 2 reduction blocks). A network whose cells take more
    than the previous output (DARTS cells read two) says so with a ``stage_features(x)`` method,
    which is used instead. Autograd graph kept. ``who`` names the proxy in the ``ScoreError`` for
    a model with neither."""
    custom = getattr(model, "stage_features", None)
    if callable(custom):
        return list(custom(inputs))
    stem, cells = getattr(model, "stem", None), getattr(model, "cells", None)
    if not isinstance(stem, nn.Module) or not isinstance(cells, (nn.Sequential, nn.ModuleList)):
        raise ScoreError(f"{who} reads stage features and needs a model with a `stem` module "
                         f"and a `cells` nn.Sequential/ModuleList (as zcnas NB201 networks); "
                         f"{type(model).__name__} has none")
    feats = [stem(inputs)]
    for cell in cells:
        feats.append(cell(feats[-1]))
    return feats


@contextmanager
def relu_outputs(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect, during the block, the (detached) output of every ``nn.ReLU`` call whose input is
    4-D (conv feature maps), in call order (as the SWAP and TE-NAS region counters hook)."""
    outs: list[torch.Tensor] = []

    def hook(_m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        if isinstance(inp, tuple) and inp and inp[0].dim() == 4:
            outs.append(out.detach())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        yield outs
    finally:
        for h in handles:
            h.remove()


def relu_codes(model: nn.Module, inputs: torch.Tensor, name: str) -> torch.Tensor:
    """Binary (bool) activation codes ``ReLU output > 0`` of every sample: (N, units), the
    per-sample concatenation over all collected ReLU calls of one forward pass (no grad)."""
    with relu_outputs(model) as outs, torch.no_grad():
        model(inputs)
    if not outs:
        raise ScoreError(f"{name} found no nn.ReLU with a 4-D input in the forward pass; it reads "
                         f"the activation patterns of nn.ReLU modules (use them instead of F.relu)")
    n = inputs.shape[0]
    return torch.cat([o.reshape(n, -1) > 0 for o in outs], dim=1)


def pre_gap_features(model: nn.Module, inputs: torch.Tensor, name: str) -> torch.Tensor:
    """The input of the last ``nn.AdaptiveAvgPool2d`` call of a forward pass (the pre-GAP
    feature map of Zen-NAS's ``forward_pre_GAP``), computed without grad."""
    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, inp: tuple, _out: torch.Tensor) -> None:
        seen.append(inp[0].detach())

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.AdaptiveAvgPool2d)]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise ScoreError(f"{name} reads the feature map before global average pooling and found no "
                         f"nn.AdaptiveAvgPool2d in the forward pass; pool with that module")
    return seen[-1]
