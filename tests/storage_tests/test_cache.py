"""The SQL score cache, through the scoring choke point ``score_record``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import dataclasses
from pathlib import Path

import pytest
from torch import nn

from zcnas.data import Batch
from zcnas.data import load_batch
from zcnas.exceptions import ScoreError
from zcnas.exceptions import StorageError
from zcnas.proxies import Proxy
from zcnas.scoring import score
from zcnas.scoring import score_record
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache


ARCH = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|skip_connect~2|"
OTHER = "|skip_connect~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


class CountingProxy(Proxy):
    """Mean output of the network times ``scale``; counts how often it really computes."""

    name = "counting_test"
    calls = 0

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = scale

    def compute(self, model: nn.Module, batch: Batch) -> float:
        type(self).calls += 1
        return float(model(batch.inputs).detach().mean()) * self.scale


class CountingProxyV2(CountingProxy):
    version = "2"


class NaNProxy(Proxy):
    """Always NaN (a proxy that fails on every network)."""

    name = "nan_test"
    calls = 0

    def compute(self, model: nn.Module, batch: Batch) -> float:
        type(self).calls += 1
        return float("nan")


@pytest.fixture(autouse=True)
def _reset_counts() -> None:
    CountingProxy.calls = CountingProxyV2.calls = NaNProxy.calls = 0


@pytest.fixture()
def cache(sqlite_url: str) -> ScoreCache:
    return ScoreCache(sqlite_url)


@pytest.fixture(scope="module")
def batch() -> Batch:
    return load_batch("synthetic", batch_size=8, seed=0)


def test_hit_returns_the_cached_value(cache: ScoreCache, batch: Batch) -> None:
    first = score_record("nb201", CountingProxy(), ARCH, batch, cache=cache)
    again = score_record("nb201", CountingProxy(), ARCH, batch, cache=cache)
    assert not first.cached and again.cached
    assert again.value == first.value
    assert again.status == "complete"
    assert CountingProxy.calls == 1
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.count() == 1
    # a fresh cache object on the same database sees it too
    third = score_record("nb201", CountingProxy(), ARCH, batch, cache=ScoreCache(cache.url))
    assert third.cached and third.value == first.value and CountingProxy.calls == 1


def test_scores_are_reproducible_without_cache(batch: Batch) -> None:
    a = score("nb201", CountingProxy(), ARCH, batch, seed=3)
    b = score("nb201", CountingProxy(), ARCH, batch, seed=3)
    assert a == b
    assert score("nb201", CountingProxy(), ARCH, batch, seed=4) != a


def test_nan_is_stored_as_failure_and_not_recomputed(cache: ScoreCache, batch: Batch) -> None:
    rec = score_record("nb201", NaNProxy(), ARCH, batch, cache=cache)
    assert rec.status == "failed" and rec.value is None
    assert "nan_test returned nan" in (rec.reason or "")
    again = score_record("nb201", NaNProxy(), ARCH, batch, cache=cache)
    assert again.cached and again.status == "failed" and again.reason == rec.reason
    assert NaNProxy.calls == 1
    with pytest.raises(ScoreError, match="non-finite"):
        score("nb201", NaNProxy(), ARCH, batch, cache=cache)
    assert NaNProxy.calls == 1


def test_put_refuses_non_finite_values(cache: ScoreCache, batch: Batch) -> None:
    rec = score_record("nb201", CountingProxy(), ARCH, batch)
    with pytest.raises(ValueError, match="non-finite"):
        cache.put(dataclasses.replace(rec, value=float("inf")))


def test_key_includes_params_version_seed_batch_arch(cache: ScoreCache, batch: Batch) -> None:
    base = score_record("nb201", CountingProxy(), ARCH, batch, cache=cache)
    variants = [
        score_record("nb201", CountingProxy(scale=2.0), ARCH, batch, cache=cache),
        score_record("nb201", CountingProxyV2(), ARCH, batch, cache=cache),
        score_record("nb201", CountingProxy(), ARCH, batch, seed=1, cache=cache),
        score_record("nb201", CountingProxy(), ARCH, load_batch("synthetic", 8, seed=1),
                     cache=cache),
        score_record("nb201", CountingProxy(), OTHER, batch, cache=cache),
    ]
    assert not any(v.cached for v in variants)
    assert cache.count() == 6
    assert variants[0].value == pytest.approx(2 * base.value)
    assert variants[0].key.params_json == '{"scale": 2.0}'
    # each variant is now a hit
    assert score_record("nb201", CountingProxy(scale=2.0), ARCH, batch, cache=cache).cached
    assert score_record("nb201", CountingProxyV2(), ARCH, batch, cache=cache).cached


def test_data_free_proxies_ignore_batch_contents(cache: ScoreCache, batch: Batch) -> None:
    a = score_record("nb201", "params", ARCH, batch, cache=cache)
    b = score_record("nb201", "params", ARCH, load_batch("synthetic", 8, seed=5), cache=cache)
    assert b.cached and b.value == a.value
    c = score_record("nb201", "params", ARCH, load_batch("synthetic", 8, seed=5,
                                                          num_classes=100), cache=cache)
    assert not c.cached and c.value > a.value  # wider classifier


def test_concurrent_put_of_one_key_keeps_one_row(cache: ScoreCache, batch: Batch) -> None:
    rec = score_record("nb201", CountingProxy(), ARCH, batch)
    caches = [ScoreCache(cache.url) for _ in range(4)]
    records = [dataclasses.replace(rec, value=float(i)) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda cr: cr[0].put(cr[1]), zip(caches, records)))
    assert cache.count() == 1
    stored = cache.get(rec.key)
    assert stored is not None and stored.value in {0.0, 1.0, 2.0, 3.0}
    cache.put(dataclasses.replace(rec, value=99.0))  # a later put keeps the first value
    assert cache.get(rec.key).value == stored.value
    assert cache.count() == 1


def test_lookup_many(cache: ScoreCache, batch: Batch) -> None:
    recs = [score_record("nb201", CountingProxy(), a, batch, cache=cache) for a in (ARCH, OTHER)]
    k = recs[0].key
    found = cache.lookup_many(k.space, k.proxy, k.proxy_version, k.params_json, k.batch_id, k.seed)
    assert {key: r.value for key, r in found.items()} == {r.key.arch_key: r.value for r in recs}
    only = cache.lookup_many(k.space, k.proxy, k.proxy_version, k.params_json, k.batch_id, k.seed,
                             arch_keys=[get_space("nb201").key(get_space("nb201").parse(OTHER))])
    assert list(only) == [OTHER]


def test_unreachable_database_hides_the_password() -> None:
    pytest.importorskip("psycopg2", reason="the postgres extra is not installed")
    url = "postgresql+psycopg2://user:secret@127.0.0.1:1/db"
    with pytest.raises(StorageError) as err:
        ScoreCache(url)
    message = str(err.value)
    assert "secret" not in message
    assert "127.0.0.1" in message and "***" in message
    assert "\n" not in message
    assert "secret" not in repr(err.value.__cause__ or "")


def test_malformed_url() -> None:
    with pytest.raises(StorageError, match="malformed database URL"):
        ScoreCache("not a url")


def test_sqlite_in_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open database"):
        ScoreCache(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


def test_sqlite_files_use_the_write_ahead_log(tmp_path: Path) -> None:
    """Commits append to a WAL (fast per trial, readers never block the writer); the database
    file stays a plain SQLite file that any other tool can open."""
    import sqlite3

    from sqlalchemy import text

    from zcnas.storage import get_engine

    url = f"sqlite:///{tmp_path / 'wal.db'}"
    with get_engine(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    ScoreCache(url)
    with sqlite3.connect(tmp_path / "wal.db") as plain:
        assert ("zcnas_scores",) in plain.execute("select name from sqlite_master").fetchall()
