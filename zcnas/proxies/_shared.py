"""A small cache that lets several proxies (or variants) share one expensive computation.

``score_record`` builds a fresh, identically seeded model for every proxy, so two proxies that
read the same intermediate result (the AZ-NAS components, the VKDNW spectrum) see equal model
states and RNG states. :func:`state_fingerprint` hashes exactly that, and :class:`SharedResults`
keeps the last few results under it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
import hashlib
from typing import Any

import torch
from torch import nn

from zcnas.data import Batch


def state_fingerprint(model: nn.Module, batch: Batch, *extra: object, contents: bool = False) -> str:
    """Hash of the module tree, every parameter and buffer value, the batch's image shape, dtype
    and device (and its contents when ``contents``), the global RNG state (CPU and, for a CUDA
    batch, that device's) and ``extra``."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr(model).encode())
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(f"{tuple(batch.inputs.shape)}{batch.inputs.dtype}{batch.inputs.device}".encode())
    if contents:
        h.update(batch.identity.encode())
    h.update(torch.get_rng_state().numpy().tobytes())
    if batch.inputs.device.type == "cuda":
        h.update(torch.cuda.get_rng_state(batch.inputs.device).numpy().tobytes())
    h.update(repr(extra).encode())
    return h.hexdigest()


class SharedResults:
    """LRU map fingerprint -> result, of at most ``size`` entries."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._data: OrderedDict[str, Any] = OrderedDict()

    def clear(self) -> None:
        self._data.clear()

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        value = compute()
        self._data[key] = value
        while len(self._data) > self.size:
            self._data.popitem(last=False)
        return value
