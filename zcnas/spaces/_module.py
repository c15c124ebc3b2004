"""A stable fingerprint of a network's structure (the cache key of a user's model)."""

from __future__ import annotations

import hashlib

from torch import nn


def module_fingerprint(model: nn.Module) -> str:
    """24-hex hash of ``model``'s structure: the module tree (names, classes and each module's
    ``extra_repr()``, in registration order) and every parameter's and buffer's name, shape and
    dtype. Not the values (a score seeds and builds its own weights) and not the ``forward``
    code: two modules of identical structure but different ``forward`` logic hash alike, which is
    why :class:`~zcnas.spaces.ModelSpace` adds the factory's name."""
    h = hashlib.sha256()
    for name, mod in model.named_modules():
        cls = type(mod)
        h.update(f"M|{name}|{cls.__module__}.{cls.__qualname__}|{mod.extra_repr()}\n".encode())
    for name, p in model.named_parameters():
        h.update(f"P|{name}|{tuple(p.shape)}|{p.dtype}|{p.requires_grad}\n".encode())
    for name, b in model.named_buffers():
        h.update(f"B|{name}|{tuple(b.shape)}|{b.dtype}\n".encode())
    return h.hexdigest()[:24]
