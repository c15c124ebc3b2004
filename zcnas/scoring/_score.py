"""The one scoring choke point: every score in zcnas (CLI, correlate, Optuna, NNI) comes
through :func:`score_record`."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
import json
import math
import time
from typing import Any

import torch

from zcnas.data import Batch
from zcnas.exceptions import ScoreError
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreKey
from zcnas.storage import ScoreRecord
from zcnas.version import __version__


@contextmanager
def _deterministic(device: str) -> Iterator[None]:
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


def resolve_device(device: str | None) -> str:
    """``"auto"``/None -> cuda if available else cpu; a missing cuda is a clear error."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ScoreError(f"--device {device} asked for, but no CUDA GPU is visible; use --device cpu")
    return str(device)


def batch_key(proxy: Proxy, batch: Batch) -> str:
    """The batch part of a cache key: its content hash, or only its shape for data-free proxies."""
    if proxy.uses_data:
        return batch.identity
    shape = "x".join(str(d) for d in batch.inputs.shape[1:])
    return f"nodata-{shape}-c{batch.num_classes}"


def score_key(space: SearchSpace, proxy: Proxy, arch_key: str, batch: Batch, seed: int) -> ScoreKey:
    return ScoreKey(
        space=space.cache_name, arch_key=arch_key, proxy=proxy.name, proxy_version=proxy.version,
        params_json=json.dumps(proxy.get_params(), sort_keys=True, default=str),
        batch_id=batch_key(proxy, batch), seed=int(seed),
    )


def compute_score(space: SearchSpace, proxy: Proxy, arch: Mapping[str, Any], batch: Batch,
                  seed: int = 0, device: str = "cpu") -> float:
    """Seed, build a fresh model, score it. No cache, no NaN policy: the raw proxy value."""
    torch.manual_seed(seed)
    model = space.build(arch, num_classes=batch.num_classes).to(device)
    model.train()
    with _deterministic(device):
        return float(proxy.compute(model, batch.to(device)))


def score_record(space: SearchSpace | str, proxy: Proxy | str, arch: Mapping[str, Any] | str,
                 batch: Batch, *, seed: int = 0, device: str | None = "cpu",
                 cache: ScoreCache | None = None) -> ScoreRecord:
    """Score ``arch`` with ``proxy`` on ``batch`` (cached), returning the full record.

    Same (space, arch, proxy and its params/version, batch identity, seed) gives the same value.
    A NaN/inf score or an out-of-memory error becomes a record with ``status == "failed"`` and
    the reason; it is cached too, so a failing architecture is not recomputed.
    """
    space = get_space(space) if isinstance(space, str) else space
    proxy = get_proxy(proxy) if isinstance(proxy, str) else proxy
    arch = space.as_arch(arch)
    device = resolve_device(device)
    key = score_key(space, proxy, space.key(arch), batch, seed)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    proxy.prepare(space, batch, seed=seed, device=device, cache=cache)
    if proxy.members():
        return _combined_record(space, proxy, arch, batch, key, seed, device, cache)
    start = time.perf_counter()
    value: float | None
    reason: str | None = None
    try:
        value = compute_score(space, proxy, arch, batch, seed, device)
    except torch.OutOfMemoryError:
        value, reason = None, (
            f"out of memory on {device} with batch {len(batch)}; lower --batch-size or use "
            f"--device cpu"
        )
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    seconds = time.perf_counter() - start
    return _finish(proxy, key, value, reason, seconds, device, batch, cache)


def _finish(proxy: Proxy, key: ScoreKey, value: float | None, reason: str | None,
            seconds: float, device: str, batch: Batch, cache: ScoreCache | None) -> ScoreRecord:
    """Apply the NaN/inf policy, build the record, store it."""
    if value is not None and not math.isfinite(value):
        value, reason = None, f"{proxy.name} returned {value} (non-finite score)"
    record = ScoreRecord(
        key=key, status="complete" if reason is None else "failed", value=value, reason=reason,
        seconds=seconds, device=device, zcnas_version=__version__, batch_source=batch.source,
        batch_size=len(batch), cached=False,
    )
    if cache is not None:
        cache.put(record)
    return record


def _combined_record(space: SearchSpace, proxy: Proxy, arch: Arch, batch: Batch, key: ScoreKey,
                     seed: int, device: str, cache: ScoreCache | None) -> ScoreRecord:
    """An ensemble's record: members scored through the cache, then combined.

    ``seconds`` is the members' total compute time (what the ensemble costs uncached).
    """
    records = [score_record(space, m, arch, batch, seed=seed, device=device, cache=cache)
               for m in proxy.members()]
    failed = [r for r in records if not r.ok]
    seconds = sum(r.seconds for r in records)
    if failed:
        reason = f"member {failed[0].key.proxy} failed: {failed[0].reason}"
        return _finish(proxy, key, None, reason, seconds, device, batch, cache)
    value = float(proxy.combine([float(r.value) for r in records]))  # type: ignore[arg-type]
    return _finish(proxy, key, value, None, seconds, device, batch, cache)


def score(space: SearchSpace | str, proxy: Proxy | str, arch: Mapping[str, Any] | str,
          batch: Batch, *, seed: int = 0, device: str | None = "cpu",
          cache: ScoreCache | None = None) -> float:
    """The proxy score of ``arch`` as a float; raises ``ScoreError`` (with the reason) if it
    failed. See :func:`score_record`."""
    record = score_record(space, proxy, arch, batch, seed=seed, device=device, cache=cache)
    if not record.ok:
        raise ScoreError(record.reason or "score failed")
    assert record.value is not None
    return record.value
