"""Proxy ensembles: label-free rank aggregation and learned weighted combinations.

Both are :class:`~zcnas.scoring.Evaluator` s: their members (any proxies) are scored through
``zcnas.scoring`` and the SQL cache, so an ensemble over cached members costs nothing extra.
Each member score is turned into a quantile within a seeded reference pool of random cells
(scored once, cached), so members on wildly different scales (synflow ~1e40, naswot ~1e3)
become comparable without labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import hashlib
import json
from pathlib import Path
from typing import Any
from typing import ClassVar

import numpy as np

from zcnas.data import Batch
from zcnas.exceptions import DataError
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.scoring import Evaluator
from zcnas.scoring import register_evaluator
from zcnas.scoring import score_many
from zcnas.scoring import score_record
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.storage import ScoreCache


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


class PoolEnsemble(Evaluator):
    """Members, a seeded reference pool per (space, batch, seed), and a weighted sum of
    per-member log-quantiles within that pool.

    Subclasses set ``member_names``, ``member_params``, ``member_weights``, ``pool_size`` and
    ``pool_seed`` in their constructor.
    """

    uses_data: ClassVar[bool] = True
    uses_labels: ClassVar[bool] = True

    member_names: tuple[str, ...]
    member_params: dict[str, Mapping[str, Any]]
    member_weights: tuple[float, ...]
    pool_size: int
    pool_seed: int

    def __init__(self) -> None:
        self._members: list[Proxy] | None = None
        self._reference: dict[tuple[str, str, int], list[np.ndarray]] = {}

    def members(self) -> list[Proxy]:
        """The member proxies (built once)."""
        if self._members is None:
            self._members = [get_proxy(n, **self.member_params.get(n, {}))
                             for n in self.member_names]
        return self._members

    def reference(self, space: SearchSpace, batch: Batch, *, seed: int, device: str,
                  cache: ScoreCache | None, progress: bool = True) -> list[np.ndarray]:
        """Sorted finite member scores on the reference pool (scored once per context)."""
        context = (space.cache_name, batch.identity, seed)
        if context not in self._reference:
            pool = [space.key(a) for a in space.sample(self.pool_size, seed=self.pool_seed)]
            scores, _ = score_many(space, self.members(), pool, batch, seed=seed, device=device,
                                   cache=cache, progress=progress,
                                   desc=f"{self.name} reference pool")
            self._reference[context] = [np.sort(v[np.isfinite(v)]) for v in scores.values()]
        return self._reference[context]

    def features(self, member_values: Sequence[float], reference: Sequence[np.ndarray]
                 ) -> np.ndarray:
        """Per-member log-quantiles of ``member_values`` within ``reference``."""
        return np.array([log_quantile(v, ref, m.direction)
                         for v, ref, m in zip(member_values, reference, self.members())])

    def combine(self, features: np.ndarray) -> float:
        return float(np.dot(self.member_weights, features))

    def evaluate(self, space: SearchSpace, arch: Arch, batch: Batch, *, seed: int, device: str,
                 cache: ScoreCache | None) -> tuple[float | None, str | None, float]:
        """Members scored through the cache, combined; seconds = the members' compute time."""
        reference = self.reference(space, batch, seed=seed, device=device, cache=cache)
        records = [score_record(space, m, arch, batch, seed=seed, device=device, cache=cache)
                   for m in self.members()]
        seconds = float(sum(r.seconds for r in records))
        failed = [r for r in records if not r.ok]
        if failed:
            return None, f"member {failed[0].key.proxy} failed: {failed[0].reason}", seconds
        values = [float(r.value) for r in records]  # type: ignore[arg-type]
        return self.combine(self.features(values, reference)), None, seconds


@register_evaluator("ensemble")
class RankEnsemble(PoolEnsemble):
    """Label-free rank aggregation: sum over members m of log q_m(arch).

    q_m is the mid-rank quantile of the arch's member score among ``pool_size`` seeded random
    cells of the same space (AZ-NAS-style log-rank sum; no labels used). Optional ``weights``
    (one per member, default all 1) make it a weighted sum. ``members`` defaults to the
    class's :attr:`default_members`.
    """

    paper = "rank aggregation as in AZ-NAS (Lee & Ham, CVPR 2024)"
    version = "1"
    #: the members when none are given (a subclass that is a published aggregate sets its own)
    default_members: ClassVar[tuple[str, ...]] = DEFAULT_MEMBERS

    def __init__(self, *, members: Sequence[str] | None = None,
                 member_params: Mapping[str, Mapping[str, Any]] | None = None,
                 weights: Sequence[float] | None = None, pool_size: int = 256,
                 pool_seed: int = 0) -> None:
        super().__init__()
        self.member_names = tuple(members if members is not None else self.default_members)
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


@register_evaluator("learned_ensemble")
class LearnedEnsemble(PoolEnsemble):
    """A weighted sum of member log-quantiles whose weights were fitted on labelled cells
    (``zcnas fit-ensemble``) and saved to ``path`` (JSON with members, weights, pool and the
    training cells). The file's content hash is part of the cache key; ``labels_used`` is the
    number of labelled cells it was fitted on."""

    paper = "learned combination, cf. RoBoT (He et al., ICLR 2024)"
    fitted_on_labels = True

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
            self.labels_used = len(spec.get("train_cells", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{p} is not a zcnas ensemble file ({exc}); recreate it with "
                            f"`zcnas fit-ensemble`") from None
        self.version = "1-" + hashlib.sha256(blob).hexdigest()[:12]


AZNAS_MEMBERS = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")
VKDNW_AGG_MEMBERS = ("vkdnw", "az_expressivity", "az_trainability", "az_complexity", "jacob_cov")


@register_evaluator("aznas")
class AZNASEnsemble(RankEnsemble):
    """AZ-NAS (Lee & Ham, CVPR 2024): log-rank sum of its four components, expressivity,
    progressivity, trainability and complexity (FLOPs): sum_k log(rank_k / L).

    The authors rank within the candidate set (cvlab-yonsei/AZ-NAS ``NB201/tss_general.ipynb``,
    cell 8); here the rank of each component is its mid-rank quantile in the seeded reference
    pool (``pool_size`` cells, label-free), so a score does not depend on the other candidates.
    """

    paper = "AZ-NAS (Lee & Ham, CVPR 2024), log-rank aggregation"

    default_members = AZNAS_MEMBERS


@register_evaluator("vkdnw_agg")
class VKDNWEnsemble(RankEnsemble):
    """VKDNW's aggregate (Tybl & Neumann, CVPR 2025): log-rank sum of VKDNW (size-first),
    AZ-NAS expressivity and trainability, FLOPs and jacov (ondratybl/VKDNW
    ``NB201/tss_utils.py`` ``get_scores``, ``vkdnw_comb_rank``), ranks as quantiles in the
    seeded reference pool. Their jacov re-initialises with He-normal fan-in; zcnas's
    ``jacob_cov`` keeps the default initialisation."""

    paper = "VKDNW (Tybl & Neumann, CVPR 2025), aggregate"

    default_members = VKDNW_AGG_MEMBERS


#: every label-free proxy zcnas ships that scores an NB201 cell at batch 64 in at most ~1.5 CPU
#: seconds (so swap, vkdnw, tenas_ntk and knas are out), fixed before any NB201 accuracy was
#: looked at: the candidates of ``consensus``
CONSENSUS_CANDIDATES = (
    "gradsign", "gradalign", "naswot", "jacob_cov", "zico", "meco", "synflow", "snip",
    "grad_norm", "az_expressivity", "az_progressivity", "az_trainability", "az_complexity",
    "zen", "params",
)


def consensus_selection(features: np.ndarray, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """Which columns of ``features`` (cells x candidates, higher is better, finite) to keep:
    each candidate's agreement is Kendall's tau between it and the mean of the other
    candidates (leave-one-out consensus, no labels); the top ``ceil(keep * m)`` agreements are
    kept. Returns (0/1 weights, agreements)."""
    from scipy import stats

    m = features.shape[1]
    agreement = np.empty(m)
    for j in range(m):
        others = np.delete(features, j, axis=1).mean(axis=1)
        agreement[j] = stats.kendalltau(features[:, j], others).statistic
    agreement = np.nan_to_num(agreement, nan=-1.0)
    n_keep = max(1, int(np.ceil(keep * m)))
    order = np.argsort(-agreement, kind="stable")[:n_keep]
    weights = np.zeros(m)
    weights[order] = 1.0
    return weights, agreement


@register_evaluator("consensus")
class ConsensusEnsemble(PoolEnsemble):
    """Label-free ensemble whose members are chosen without labels: on the seeded reference
    pool, each candidate proxy's log-quantiles are compared with the mean of the others'
    (leave-one-out consensus, Kendall tau), the best-agreeing ``keep`` fraction is kept, and
    the score is the plain sum of the kept members' log-quantiles (AZ-NAS-style aggregation).

    No accuracy of the searched benchmark enters: the candidates
    (:data:`CONSENSUS_CANDIDATES`) were fixed by cost alone, and ``keep = 0.25`` was chosen
    among 0.25 / 0.5 / 0.75 / 1 on NB101, NB301 and TransNAS-Bench-101 (the NB-Suite-Zero
    proxy tables, ``scripts/consensus_check.py``), never on NB201. Which members survive
    depends only on the unlabelled pool of the space being searched; :meth:`selection` tells
    which ones did.
    """

    paper = "zcnas: leave-one-out consensus selection + log-rank sum (label-free)"
    version = "1"

    def __init__(self, *, candidates: Sequence[str] = CONSENSUS_CANDIDATES,
                 member_params: Mapping[str, Mapping[str, Any]] | None = None, keep: float = 0.25,
                 pool_size: int = 256, pool_seed: int = 0) -> None:
        super().__init__()
        if not 0 < keep <= 1:
            raise DataError(f"consensus keep must be in (0, 1], got {keep}")
        self.candidates = list(candidates)
        self.member_names = tuple(candidates)
        self.member_params = dict(member_params or {})
        self.keep = keep
        self.pool_size = pool_size
        self.pool_seed = pool_seed
        self.member_weights = tuple(1.0 for _ in self.member_names)
        self._selection: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] = {}

    def get_params(self) -> dict[str, Any]:
        return {"candidates": list(self.candidates), "member_params": self.member_params,
                "keep": self.keep, "pool_size": self.pool_size, "pool_seed": self.pool_seed}

    def _select(self, space: SearchSpace, batch: Batch, *, seed: int, device: str,
                cache: ScoreCache | None) -> tuple[np.ndarray, np.ndarray]:
        context = (space.cache_name, batch.identity, seed)
        if context not in self._selection:
            reference = self.reference(space, batch, seed=seed, device=device, cache=cache)
            pool = [space.key(a) for a in space.sample(self.pool_size, seed=self.pool_seed)]
            scores, _ = score_many(space, self.members(), pool, batch, seed=seed, device=device,
                                   cache=cache, progress=False)
            cols = np.stack([scores[m.name] for m in self.members()], axis=1)
            ok = np.isfinite(cols).all(axis=1)
            feats = np.array([self.features(list(row), reference) for row in cols[ok]])
            self._selection[context] = consensus_selection(feats, self.keep)
        return self._selection[context]

    def selection(self, space: SearchSpace, batch: Batch, *, seed: int = 0, device: str = "cpu",
                  cache: ScoreCache | None = None) -> dict[str, float]:
        """Kept members and their consensus agreement (Kendall tau) on this space's pool."""
        weights, agreement = self._select(space, batch, seed=seed, device=device, cache=cache)
        return {m.name: float(a) for m, w, a in zip(self.members(), weights, agreement) if w}

    def evaluate(self, space: SearchSpace, arch: Arch, batch: Batch, *, seed: int, device: str,
                 cache: ScoreCache | None) -> tuple[float | None, str | None, float]:
        """Only the kept members are scored for ``arch``."""
        weights, _ = self._select(space, batch, seed=seed, device=device, cache=cache)
        reference = self.reference(space, batch, seed=seed, device=device, cache=cache)
        kept = [i for i, w in enumerate(weights) if w]
        records = [score_record(space, self.members()[i], arch, batch, seed=seed,
                                device=device, cache=cache) for i in kept]
        seconds = float(sum(r.seconds for r in records))
        failed = [r for r in records if not r.ok]
        if failed:
            return None, f"member {failed[0].key.proxy} failed: {failed[0].reason}", seconds
        total = 0.0
        for i, r in zip(kept, records):
            total += log_quantile(float(r.value), reference[i],  # type: ignore[arg-type]
                                  self.members()[i].direction)
        return total, None, seconds
