"""A stable fingerprint of a PyTorch model's structure (for cache keys of arbitrary models)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from torch import nn


FINGERPRINT_VERSION = "zcnas-module-fingerprint-1"
_PLAIN = (bool, int, float, str, type(None))
_SKIP = object()


def _plain(value: Any) -> Any:
    """``value`` if it is a plain scalar or a (nested) tuple/list of them, else ``_SKIP``."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list)):
        items = [_plain(v) for v in value]
        return _SKIP if any(i is _SKIP for i in items) else items
    return _SKIP


def _attributes(module: nn.Module) -> dict[str, Any]:
    out = {}
    for key, value in vars(module).items():
        if key.startswith("_") or key == "training":
            continue
        plain = _plain(value)
        if plain is not _SKIP:
            out[key] = plain
    return out


def module_structure(model: nn.Module) -> dict[str, Any]:
    """What :func:`module_fingerprint` hashes, as a JSON-serialisable dict."""
    modules = [
        {"name": name, "type": type(mod).__qualname__, "repr": mod.extra_repr(),
         "attributes": _attributes(mod)}
        for name, mod in model.named_modules()
    ]
    owners = dict(model.named_modules())
    params = [[name, list(p.shape), str(p.dtype), bool(p.requires_grad)]
              for name, p in model.named_parameters()]
    buffers = []
    for name, b in model.named_buffers():
        owner, _, leaf = name.rpartition(".")
        persistent = leaf not in owners[owner]._non_persistent_buffers_set
        buffers.append([name, list(b.shape), str(b.dtype), persistent])
    return {"version": FINGERPRINT_VERSION, "modules": modules, "parameters": params,
            "buffers": buffers}


def module_fingerprint(model: nn.Module) -> str:
    """A 32-hex-digit hash of ``model``'s structure, the same in every process and on every
    machine for the same structure.

    Covered: the module tree in registration order (each module's name, class name
    ``__qualname__``, ``extra_repr()`` and public plain attributes such as
    ``nn.MultiheadAttention.num_heads``, which ``extra_repr`` does not show); every parameter's
    name, shape, dtype and ``requires_grad``; every buffer's name, shape, dtype and persistence.
    Shared modules and tied parameters appear once, as in ``named_modules``/``named_parameters``,
    so tying changes the fingerprint.

    Not covered: values (a score seeds and builds its own weights, so re-initialising or
    training a model keeps its fingerprint); the device; train/eval mode; hooks; and the
    ``forward`` code itself: two classes with the same name and structure but different
    ``forward`` logic hash the same, which is why a caller that keys scores by fingerprint adds
    the factory's name (and version) to the key.
    """
    text = json.dumps(module_structure(model), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
