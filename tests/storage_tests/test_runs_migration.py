"""A database created at revision v0.1.0.a (score cache only, beside an Optuna study) is
upgraded in place to the current head (v0.1.0.b adds zcnas_runs) without losing anything."""

from __future__ import annotations

from collections.abc import Iterator
import json
import uuid

import optuna
import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.engine import make_url

from zcnas.search.studies import runs
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreKey
from zcnas.storage import current_revision
from zcnas.storage import get_engine
from zcnas.storage import head_revision
from zcnas.storage import upgrade


KEY = ScoreKey(space="nb201", arch_key="|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
               proxy="params", proxy_version="1", params_json=json.dumps({}), batch_id="b", seed=0)


def _freeze_at_v010a(url: str) -> None:
    """What a zcnas 0.1.0.a user had: Optuna's tables + zcnas_scores with one score."""
    optuna.create_study(study_name="old", storage=url).enqueue_trial({"x": 1})
    engine = get_engine(url)
    upgrade(engine, "v0.1.0.a")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO zcnas_scores (space, arch_key, proxy, proxy_version, params_hash, "
            "params_json, batch_id, batch_source, batch_size, seed, status, value, reason, seconds, "
            "device, zcnas_version) VALUES (:space, :arch, 'params', '1', :ph, '{}', 'b', 'test', "
            "4, 0, 'complete', 0.0733, NULL, 0.01, 'cpu', '0.1.0')"),
            {"space": KEY.space, "arch": KEY.arch_key, "ph": KEY.params_hash})
    assert current_revision(engine) == "v0.1.0.a"
    assert "zcnas_runs" not in sa_inspect(engine).get_table_names()


def _check_upgraded(url: str) -> None:
    cache = ScoreCache(url)  # upgrades on open
    engine = get_engine(url)
    assert head_revision() == "v0.1.0.b"
    assert current_revision(engine) == head_revision()
    hit = cache.get(KEY)
    assert hit is not None and hit.value == pytest.approx(0.0733)
    assert "zcnas_runs" in sa_inspect(engine).get_table_names()
    assert runs(url) == []
    study = optuna.load_study(study_name="old", storage=url)  # Optuna's tables untouched
    assert len(study.trials) == 1
    with engine.connect() as conn:  # Optuna keeps its own alembic version table
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_upgrade_frozen_v010a_sqlite(sqlite_url: str) -> None:
    _freeze_at_v010a(sqlite_url)
    _check_upgraded(sqlite_url)


@pytest.fixture()
def fresh_postgres_db(postgres_url: str) -> Iterator[str]:
    name = f"zcnas_mig_{uuid.uuid4().hex[:10]}"
    admin = get_engine(postgres_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from zcnas.storage import _url

        engine = _url._ENGINES.pop(url, None)
        if engine is not None:
            engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_upgrade_frozen_v010a_postgres(fresh_postgres_db: str) -> None:
    _freeze_at_v010a(fresh_postgres_db)
    _check_upgraded(fresh_postgres_db)
