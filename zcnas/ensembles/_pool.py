"""Proxy ensembles: label-free rank aggregation and learned weighted combinations.

Both are ordinary registered proxies. Their members are scored through the SQL cache, so an
ensemble over cached members costs nothing extra. Each member score is turned into a quantile
within a seeded reference pool of random cells (scored once, cached), so members on wildly
different scales (synflow ~1e40, naswot ~1e3) become comparable without labels.
"""

from __future__ import annotations

from collections.abc import Sequence
import hashlib
import json
from pathlib import Path
from typing import Any
from typing import ClassVar

import numpy as np
from torch import nn

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.exceptions import ScoreError
from zcnas.proxies._base import Proxy
from zcnas.proxies._registry import get_proxy
from zcnas.proxies._registry import register_proxy


DEFAULT_MEMBERS = ("gradsign", "synflow", "naswot", "jacob_cov", "zico", "flops")


def log_quantile(value: float, reference: np.ndarray, direction: str) -> float:
    """log of the (mid-rank) quantile of ``value`` within sorted ``reference``, in the
    member's "better" direction: higher is better; the pool's best gets about log(1) = 0."""
    ref = reference if direction == "maximize" else -reference[::-1]
    x = value if direction == "maximize" else -value
    below = np.searchsorted(ref, x, side="left")
    equal = np.searchsorted(ref, x, side="right") - below
    q = (below + 0.5 * equal + 0.5) / (len(ref) + 1)
    return float(np.log(q))


class _PoolEnsemble(Proxy):
    """Shared machinery: members, a reference pool, and a weighted sum of log-quantiles."""

    uses_data: ClassVar[bool] = True
    uses_labels: ClassVar[bool] = True

    member_names: tuple[str, ...]
    member_params: dict[str, dict[str, Any]]
    member_weights: tuple[float, ...]
    pool_size: int
    pool_seed: int

    def __init__(self) -> None:
        self._members: list[Proxy] | None = None
        self._reference: dict[tuple, list[np.ndarray]] = {}
        self._active: tuple | None = None

    def members(self) -> list[Proxy]:
        if self._members is None:
            self._members = [get_proxy(n, **self.member_params.get(n, {}))
                             for n in self.member_names]
        return self._members

    def prepare(self, space: Any, batch: Batch, *, seed: int, device: str, cache: Any) -> None:
        """Score the reference pool with every member once per (space, batch, seed)."""
        from zcnas.correlate import score_many  # late: correlate imports proxies

        context = (space.cache_name, batch.identity, seed)
        self._active = context
        if context in self._reference:
            return
        pool = [space.key(a) for a in space.sample(self.pool_size, seed=self.pool_seed)]
        scores, _ = score_many(space, self.members(), pool, batch, seed=seed, device=device,
                               cache=cache, progress=True, desc=f"{self.name} reference pool")
        self._reference[context] = [np.sort(v[np.isfinite(v)]) for v in scores.values()]

    def features(self, member_values: Sequence[float]) -> np.ndarray:
        """Per-member log-quantiles of ``member_values`` in the active reference pool."""
        if self._active is None:
            raise ScoreError(f"{self.name} must be scored through zcnas.score (it needs its "
                             f"reference pool)")
        refs = self._reference[self._active]
        return np.array([
            log_quantile(v, ref, m.direction)
            for v, ref, m in zip(member_values, refs, self.members())
        ])

    def combine(self, member_values: list[float]) -> float:
        return float(np.dot(self.member_weights, self.features(member_values)))

    def compute(self, model: nn.Module, batch: Batch) -> float:
        raise ScoreError(f"{self.name} is an ensemble: score it with zcnas.score / "
                         f"`zcnas score`, which scores its members through the cache")


@register_proxy("ensemble")
class RankEnsembleProxy(_PoolEnsemble):
    """Label-free rank aggregation: sum over members m of log q_m(arch).

    q_m is the mid-rank quantile of the arch's member score among ``pool_size`` seeded random
    cells of the same space (AZ-NAS-style log-rank sum; no labels used). Optional ``weights``
    (one per member, default all 1) make it a weighted sum.
    """

    paper = "rank aggregation as in AZ-NAS (Lee & Ham, CVPR 2024)"
    version = "1"

    def __init__(self, *, members: Sequence[str] = DEFAULT_MEMBERS,
                 member_params: dict[str, dict[str, Any]] | None = None,
                 weights: Sequence[float] | None = None, pool_size: int = 256,
                 pool_seed: int = 0) -> None:
        super().__init__()
        self.member_names = tuple(members)
        self.member_params = dict(member_params or {})
        self.weights = list(weights) if weights is not None else None
        self.member_weights = tuple(self.weights or [1.0] * len(self.member_names))
        if len(self.member_weights) != len(self.member_names):
            raise DataError(f"ensemble has {len(self.member_names)} members but "
                            f"{len(self.member_weights)} weights; give one weight per member")
        self.pool_size = pool_size
        self.pool_seed = pool_seed

    def get_params(self) -> dict[str, Any]:
        return {"members": list(self.member_names), "member_params": self.member_params,
                "weights": self.weights, "pool_size": self.pool_size,
                "pool_seed": self.pool_seed}


@register_proxy("learned_ensemble")
class LearnedEnsembleProxy(_PoolEnsemble):
    """A weighted sum of member log-quantiles whose weights were fitted on labelled cells
    (``zcnas fit-ensemble``) and saved to ``path`` (JSON with members, weights, pool and the
    training cells). The file's content hash is part of the cache key."""

    paper = "learned combination, cf. RoBoT (He et al., ICLR 2024)"

    def __init__(self, *, path: str) -> None:
        super().__init__()
        self.path = path
        p = Path(path)
        if not p.is_file():
            raise DataError(f"ensemble file {p} not found; create it with `zcnas fit-ensemble`")
        blob = p.read_bytes()
        try:
            spec = json.loads(blob)
            self.member_names = tuple(spec["members"])
            self.member_params = dict(spec.get("member_params", {}))
            self.member_weights = tuple(float(w) for w in spec["weights"])
            self.pool_size = int(spec["pool_size"])
            self.pool_seed = int(spec["pool_seed"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{p} is not a zcnas ensemble file ({exc}); recreate it with "
                            f"`zcnas fit-ensemble`") from None
        self.version = "1-" + hashlib.sha256(blob).hexdigest()[:12]
