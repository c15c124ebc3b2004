"""Scoring many architectures with many proxies, through the cache (resumable)."""

from __future__ import annotations

from collections.abc import Sequence
import logging

import numpy as np
from tqdm.auto import tqdm

from zcnas.data import Batch
from zcnas.scoring._evaluator import Scorable
from zcnas.scoring._evaluator import params_json
from zcnas.scoring._keys import batch_key
from zcnas.scoring._score import score_record
from zcnas.spaces import SearchSpace
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreRecord


_logger = logging.getLogger(__name__)


def stored_records(cache: ScoreCache | None, space: SearchSpace, proxy: Scorable, batch: Batch,
                   seed: int, keys: Sequence[str] | None = None) -> dict[str, ScoreRecord]:
    """The cached records of ``proxy`` on ``batch``/``seed`` in ``space``, by arch key (all of
    them, or those of ``keys``), in one query."""
    if cache is None:
        return {}
    return cache.lookup_many(space.cache_name, proxy.name, proxy.version, params_json(proxy),
                             batch_key(proxy, batch), seed, keys)


def score_many(space: SearchSpace, proxies: Sequence[Scorable], arch_keys: Sequence[str],
               batch: Batch, *, seed: int = 0, device: str = "cpu",
               cache: ScoreCache | None = None, progress: bool = True, desc: str = "scoring"
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Score every arch with every proxy (cached; an interrupted run resumes where it stopped).

    Returns (scores, seconds) by proxy name; failed scores are NaN.
    """
    scores = {p.name: np.full(len(arch_keys), np.nan) for p in proxies}
    seconds = {p.name: np.full(len(arch_keys), np.nan) for p in proxies}
    todo: list[tuple[int, Scorable]] = []
    for proxy in proxies:
        known = stored_records(cache, space, proxy, batch, seed, arch_keys)
        for i, key in enumerate(arch_keys):
            rec = known.get(key)
            if rec is None:
                todo.append((i, proxy))
            else:
                scores[proxy.name][i] = rec.value if rec.ok else np.nan
                seconds[proxy.name][i] = rec.seconds
    todo.sort(key=lambda t: t[0])  # arch-major: each finished arch is complete for all proxies
    bar = tqdm(todo, desc=desc, unit="score", disable=not progress or not todo, smoothing=0.05)
    for i, proxy in bar:
        rec = score_record(space, proxy, arch_keys[i], batch, seed=seed, device=device,
                           cache=cache)
        scores[proxy.name][i] = rec.value if rec.ok else np.nan
        seconds[proxy.name][i] = rec.seconds
        if not rec.ok:
            _logger.warning("%s failed on %s: %s", proxy.name, arch_keys[i], rec.reason)
    return scores, seconds
