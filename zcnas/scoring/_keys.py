"""Cache keys: everything that determines a score, in one place."""

from __future__ import annotations

from zcnas.data import Batch
from zcnas.scoring._evaluator import Scorable
from zcnas.scoring._evaluator import params_json
from zcnas.spaces import SearchSpace
from zcnas.storage import ScoreKey


def batch_key(proxy: Scorable, batch: Batch) -> str:
    """The batch part of a cache key: its content hash, or only its shape for data-free proxies."""
    if proxy.uses_data:
        return batch.identity
    shape = "x".join(str(d) for d in batch.inputs.shape[1:])
    return f"nodata-{shape}-c{batch.num_classes}"


def score_key(space: SearchSpace, proxy: Scorable, arch_key: str, batch: Batch,
              seed: int) -> ScoreKey:
    """The :class:`~zcnas.storage.ScoreKey` of one score: space (name, version, non-default
    parameters), architecture key, proxy name, version and parameters, batch identity, seed."""
    return ScoreKey(
        space=space.cache_name, arch_key=arch_key, proxy=proxy.name, proxy_version=proxy.version,
        params_json=params_json(proxy), batch_id=batch_key(proxy, batch), seed=int(seed),
    )
