"""Where a score runs: device resolution and deterministic cuDNN for the duration of a score."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from zcnas.exceptions import ScoreError


def resolve_device(device: str | None) -> str:
    """``"auto"``/None -> cuda if available else cpu; a missing cuda is a clear error."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ScoreError(f"device {device!r} asked for, but no CUDA GPU is visible; use cpu or "
                         f"auto (cpu when no GPU is there)")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ScoreError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    return device


@contextmanager
def deterministic(device: str) -> Iterator[None]:
    """cuDNN deterministic for the duration of one score, restored afterwards."""
    if not str(device).startswith("cuda"):
        yield
        return
    old = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old
