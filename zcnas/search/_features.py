"""Proxy scores for zcnas's architecture samplers: several members scored through the cache,
each architecture's compute seconds charged once per run, and scale-free feature transforms.

A sampler that uses proxies holds one :class:`MemberScorer` per run. Every architecture it scores
for the first time in that run is *charged*: the stored compute seconds of all its members
(whether this run computed them or found them cached, the honest charge), reported by
:meth:`MemberScorer.pop_charges` and recorded by the sampler as the trial attributes
``proxy_charge`` (JSON ``[[arch_key, seconds], ...]``) and ``proxy_charge_seconds``, which the
compare report sums into the run's seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any

import numpy as np

from zcnas.data import Batch
from zcnas.exceptions import ZcnasError
from zcnas.scoring import Scorable
from zcnas.scoring import resolve
from zcnas.scoring import score_key
from zcnas.scoring import score_record
from zcnas.scoring import stored_records
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreKey
from zcnas.storage import ScoreRecord


#: structural members computed from the architecture itself (free, never charged)
STRUCTURAL = ("skip",)
#: prefix of members read from a benchmark's precomputed table (``reference:<name>``)
REFERENCE = "reference:"


def is_free_member(name: str) -> bool:
    """Members that are not zcnas proxies: structural ones and precomputed tables."""
    return name in STRUCTURAL or name.startswith(REFERENCE)


class MemoScoreCache(ScoreCache):
    """A :class:`~zcnas.storage.ScoreCache` that keeps every record it has read or written in
    memory: the first lookup of a proxy configuration loads all its stored rows in one query
    (:meth:`preload`), later lookups cost a dictionary access. Writes still go to the database."""

    def __init__(self, url: str | None = None) -> None:
        super().__init__(url)
        self._memo: dict[ScoreKey, ScoreRecord] = {}

    def preload(self, space: SearchSpace, proxy: Scorable, batch: Batch, seed: int) -> int:
        """Load every stored record of ``proxy`` on ``batch``/``seed``; returns how many."""
        rows = stored_records(self, space, proxy, batch, seed)
        for rec in rows.values():
            self._memo[rec.key] = rec
        return len(rows)

    def get(self, key: ScoreKey) -> ScoreRecord | None:
        rec = self._memo.get(key)
        if rec is not None:
            self.hits += 1
            return rec
        rec = super().get(key)
        if rec is not None:
            self._memo[key] = rec
        return rec

    def put(self, record: ScoreRecord) -> None:
        super().put(record)
        self._memo[record.key] = ScoreRecord(**{**record.__dict__, "cached": True})


def skip_depth(arch_key: str) -> float:
    """FreeREA's "skipped layers" metric of an NB201 cell: the mean, over the cell's
    ``skip_connect`` edges j -> i, of the number of nodes the edge jumps (i - 1 - j); 0 without
    skips (repository ``NiccoloCavagnero/FreeREA``, ``nas_spaces/nats.py``, ``_skip``)."""
    levels = arch_key.split("+")
    if len(levels) != 3 or not all(lv.startswith("|") and lv.endswith("|") for lv in levels):
        raise ZcnasError(f"the skip metric needs an NB201 cell string, got {arch_key!r}; use "
                         f"proxies only (drop 'skip' from the members) in other spaces")
    total, count = 0, 0
    for target, level in enumerate(levels):
        for source, gene in enumerate(level.strip("|").split("|")):
            if gene.startswith("skip_connect"):
                total += target - source
                count += 1
    return total / count if count else 0.0


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(v) * log(1 + |v|): monotone, and compresses SynFlow's 1e30..1e60 into 70..140."""
    return np.sign(values) * np.log1p(np.abs(values))


class MemberScorer:
    """Scores architectures with ``members`` (proxies, evaluators, or ``"skip"``) for one run.

    Args:
        space: the search space.
        members: names or objects; ``"skip"`` is FreeREA's structural NB201 metric.
        batch: the proxies' data.
        cache: score cache (a :class:`MemoScoreCache` makes repeated lookups free).
        init_seed: the proxies' weight-initialisation seed.
        device: where proxies run.
        member_params: hyper-parameters by member name.
        tables: values of ``reference:<name>`` members by architecture key (a benchmark's
            precomputed scores, e.g. NAS-Bench-Suite-Zero's: the papers' convention, free and
            never charged; a key missing from a table is NaN).

    Values are oriented so that higher is better (a member whose direction is ``minimize`` is
    negated); a failed score is NaN.
    """

    def __init__(self, space: SearchSpace, members: Sequence[Scorable | str], batch: Batch, *,
                 cache: ScoreCache | None = None, init_seed: int = 0, device: str = "cpu",
                 member_params: Mapping[str, Mapping[str, Any]] | None = None,
                 tables: Mapping[str, Mapping[str, float]] | None = None) -> None:
        if not members:
            raise ZcnasError("a proxy-assisted sampler needs at least one member proxy")
        params = dict(member_params or {})
        self.tables = dict(tables or {})
        for m in members:
            if isinstance(m, str) and m.startswith(REFERENCE) and m not in self.tables:
                raise ZcnasError(f"member {m!r} needs its table of precomputed scores "
                                 f"(tables={{{m!r}: {{arch_key: value}}}})")
        self.space = space
        self.batch = batch
        self.cache = cache
        self.init_seed = init_seed
        self.device = device
        self.members: list[Scorable | str] = [
            m if not isinstance(m, str) or is_free_member(m) else resolve(m, **params.get(m, {}))
            for m in members]
        self.names = [m if isinstance(m, str) else m.name for m in self.members]
        self._sign = np.array([1.0 if isinstance(m, str) or m.direction == "maximize" else -1.0
                               for m in self.members])
        self._rows: dict[str, np.ndarray] = {}
        self._pending: list[tuple[str, float]] = []
        self.charged_seconds = 0.0

    def __len__(self) -> int:
        return len(self.members)

    def preload(self) -> None:
        """Read every stored score of the members at once (with a :class:`MemoScoreCache`)."""
        if isinstance(self.cache, MemoScoreCache):
            for m in self.members:  # structural and table members are not cached
                if not isinstance(m, str):
                    self.cache.preload(self.space, m, self.batch, self.init_seed)

    def _score(self, arch: Arch, key: str) -> np.ndarray:
        row = np.full(len(self.members), np.nan)
        seconds = 0.0
        for j, m in enumerate(self.members):
            if isinstance(m, str):
                row[j] = self.tables[m].get(key, np.nan) if m in self.tables else skip_depth(key)
                continue
            rec = score_record(self.space, m, arch, self.batch, seed=self.init_seed,
                               device=self.device, cache=self.cache)
            seconds += float(rec.seconds)
            if rec.ok and rec.value is not None and math.isfinite(rec.value):
                row[j] = rec.value
        self._pending.append((key, seconds))
        self.charged_seconds += seconds
        return row * self._sign

    def values(self, archs: Iterable[Arch]) -> np.ndarray:
        """An (n, members) array of oriented member values; first-time archs are charged."""
        out = []
        for arch in archs:
            key = self.space.key(arch)
            if key not in self._rows:
                self._rows[key] = self._score(arch, key)
            out.append(self._rows[key])
        return np.array(out).reshape(-1, len(self.members))

    def known(self, key: str) -> np.ndarray | None:
        """The values of an architecture scored earlier in this run (None if never)."""
        return self._rows.get(key)

    def pop_charges(self) -> list[tuple[str, float]]:
        """Architectures charged since the last call, with their members' compute seconds."""
        out, self._pending = self._pending, []
        return out

    def record_key(self, arch: Arch, member: int = 0) -> ScoreKey:
        """The cache key of one member's score of ``arch`` (for reports and tests)."""
        m = self.members[member]
        if isinstance(m, str):
            raise ZcnasError(f"{m!r} is structural and has no cache key")
        return score_key(self.space, m, self.space.key(arch), self.batch, self.init_seed)
