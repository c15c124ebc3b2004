"""The one scoring choke point: every score in zcnas (CLI, correlate, Optuna, NNI, ensembles)
comes through :func:`score_record`."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import math
import time
from typing import Any

import torch
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import ScoreError
from zcnas.exceptions import StorageError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Proxy
from zcnas.scoring._device import deterministic
from zcnas.scoring._device import resolve_device
from zcnas.scoring._evaluator import Evaluator
from zcnas.scoring._evaluator import Scorable
from zcnas.scoring._evaluator import resolve
from zcnas.scoring._keys import score_key
from zcnas.spaces import ModelSpace
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreKey
from zcnas.storage import ScoreRecord
from zcnas.version import __version__


def fresh_model(space: SearchSpace, arch: Mapping[str, Any], num_classes: int, seed: int,
                device: str = "cpu") -> nn.Module:
    """``space.build(arch)`` with torch seeded by ``seed``, on ``device``, in train mode: the
    network every proxy scores. Seeds the global torch RNG: call it inside
    :func:`isolated_rng` to leave the caller's random state alone."""
    torch.manual_seed(seed)
    model = space.build(arch, num_classes=num_classes).to(device)
    model.train()
    return model


def isolated_rng(device: str) -> Any:
    """A context in which torch's global RNG (CPU, and the CUDA device in use) may be reseeded
    without changing the caller's random state afterwards."""
    devices = [torch.device(device)] if str(device).startswith("cuda") else []
    return torch.random.fork_rng(devices=devices)


def compute_score(space: SearchSpace, proxy: Proxy, arch: Mapping[str, Any], batch: Batch,
                  seed: int = 0, device: str = "cpu") -> float:
    """Seed, build a fresh model, score it. No cache, no NaN policy: the raw proxy value.
    torch's global random state is the same afterwards as before."""
    with isolated_rng(device):
        model = fresh_model(space, arch, batch.num_classes, seed, device)
        proxy.check_model(model)
        with deterministic(device):
            return float(proxy.compute(model, batch.to(device)))


def _compute(space: SearchSpace, proxy: Proxy, arch: Mapping[str, Any], batch: Batch, seed: int,
             device: str) -> tuple[float | None, str | None]:
    """The proxy value, or None and the reason it failed (out of memory, a proxy's own
    ``ScoreError``, any exception the proxy raised). Storage errors and interrupts propagate:
    they say nothing about the architecture."""
    try:
        return compute_score(space, proxy, arch, batch, seed, device), None
    except torch.OutOfMemoryError:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        return None, (f"out of memory on {device} with batch {len(batch)}; lower --batch-size "
                      f"or use --device cpu")
    except StorageError:
        raise
    except ZcnasError as exc:
        return None, str(exc)
    except Exception as exc:  # a proxy bug or an input it cannot handle: one failed score
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        return None, f"{proxy.name} raised {type(exc).__name__}: {first}"


def score_record(space: SearchSpace | str, proxy: Scorable | str, arch: Mapping[str, Any] | str,
                 batch: Batch, *, seed: int = 0, device: str | None = "cpu",
                 cache: ScoreCache | None = None) -> ScoreRecord:
    """Score ``arch`` with ``proxy`` (a proxy or an evaluator, or its name) on ``batch``
    (cached), returning the full record.

    Same (space, arch, proxy and its params/version, batch identity, seed) gives the same value.
    A NaN/inf score, an out-of-memory error or an exception of the proxy becomes a record with
    ``status == "failed"`` and the reason; it is cached too, so a failing architecture is not
    recomputed. Errors of the storage itself are raised (``StorageError``), never recorded.
    """
    space = get_space(space) if isinstance(space, str) else space
    proxy = resolve(proxy)
    arch = space.as_arch(arch)
    device = resolve_device(device)
    key = score_key(space, proxy, space.key(arch), batch, seed)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    start = time.perf_counter()
    if isinstance(proxy, Evaluator):
        value, reason, seconds = proxy.evaluate(space, arch, batch, seed=seed, device=device,
                                                cache=cache)
    else:
        value, reason = _compute(space, proxy, arch, batch, seed, device)
        seconds = time.perf_counter() - start
    return finish_record(proxy, key, value, reason, seconds, device, batch, cache)


def finish_record(proxy: Scorable, key: ScoreKey, value: float | None, reason: str | None,
                  seconds: float, device: str, batch: Batch,
                  cache: ScoreCache | None) -> ScoreRecord:
    """Apply the NaN/inf policy, build the record, store it (if ``cache``)."""
    if value is not None and not math.isfinite(value):
        value, reason = None, f"{proxy.name} returned {value} (non-finite score)"
    if value is None and reason is None:
        reason = f"{proxy.name} returned no value"
    record = ScoreRecord(
        key=key, status="complete" if reason is None else "failed", value=value, reason=reason,
        seconds=seconds, device=device, zcnas_version=__version__, batch_source=batch.source,
        batch_size=len(batch), cached=False,
    )
    if cache is not None:
        cache.put(record)
    return record


def failed_record(space: SearchSpace, proxy: Scorable, arch_key: str, batch: Batch, seed: int,
                  device: str, reason: str) -> ScoreRecord:
    """A failed, uncached record (for failures outside a score, e.g. an invalid architecture)."""
    return ScoreRecord(key=score_key(space, proxy, arch_key, batch, seed), status="failed",
                       value=None, reason=reason, seconds=0.0, device=device,
                       zcnas_version=__version__, batch_source=batch.source,
                       batch_size=len(batch))


def score(space: SearchSpace | str, proxy: Scorable | str, arch: Mapping[str, Any] | str,
          batch: Batch, *, seed: int = 0, device: str | None = "cpu",
          cache: ScoreCache | None = None) -> float:
    """The proxy score of ``arch`` as a float; raises ``ScoreError`` (with the reason) if it
    failed. See :func:`score_record`."""
    record = score_record(space, proxy, arch, batch, seed=seed, device=device, cache=cache)
    if not record.ok:
        raise ScoreError(record.reason or "score failed")
    assert record.value is not None
    return record.value


def _model_space(model: nn.Module | Callable[..., nn.Module], factory_kwargs: Mapping[str, Any]
                 | None, label: str | None, batch: Batch) -> ModelSpace:
    space = ModelSpace(model, factory_kwargs=factory_kwargs, label=label,
                       input_size=tuple(batch.inputs.shape[1:]))  # type: ignore[arg-type]
    with isolated_rng("cpu"):
        net = space.build({}, num_classes=batch.num_classes)
        net.eval()
        with torch.no_grad():
            out = net(batch.inputs[:1])
    if not isinstance(out, torch.Tensor) or out.shape != (1, batch.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ScoreError(
            f"{space.label} maps a {tuple(batch.inputs.shape[1:])} image to {shape}; zcnas scores "
            f"models that map images to (N, {batch.num_classes}) logits: give the model a "
            f"{batch.num_classes}-class head or pass --num-classes to match it"
        )
    return space


def score_model_record(model: nn.Module | Callable[..., nn.Module], proxy: Scorable | str,
                       batch: Batch, *, seed: int = 0, device: str | None = "cpu",
                       cache: ScoreCache | None = None,
                       factory_kwargs: Mapping[str, Any] | None = None,
                       label: str | None = None) -> ScoreRecord:
    """Score any ``torch.nn.Module`` that maps images to logits (an instance, or a factory
    called with ``factory_kwargs``), through the same choke point and cache as a space's cells.
    See :class:`~zcnas.spaces.ModelSpace` for what the cache key covers. A model whose output
    is not ``(N, batch.num_classes)`` logits is a ``ScoreError`` naming the fix."""
    space = _model_space(model, factory_kwargs, label, batch)
    return score_record(space, proxy, {}, batch, seed=seed, device=device, cache=cache)


def score_model(model: nn.Module | Callable[..., nn.Module], proxy: Scorable | str, batch: Batch,
                *, seed: int = 0, device: str | None = "cpu", cache: ScoreCache | None = None,
                factory_kwargs: Mapping[str, Any] | None = None,
                label: str | None = None) -> float:
    """The proxy score of a user's model as a float (``ScoreError`` with the reason if it
    failed); see :func:`score_model_record`."""
    record = score_model_record(model, proxy, batch, seed=seed, device=device, cache=cache,
                                factory_kwargs=factory_kwargs, label=label)
    if not record.ok:
        raise ScoreError(record.reason or "score failed")
    assert record.value is not None
    return record.value
