"""A database written by zcnas 0.1.0 (the flat package, before the layering) is read by this
code with every cached score a hit, its study and run rows intact.

The asset is made by ``scripts/make_compat_db.py`` with the 0.1.0 code (see its docstring), not
by hand; its manifest lists every score with the arguments that produced it.
"""

from __future__ import annotations

import json
from pathlib import Path
import shutil

import optuna
import pytest

from zcnas.data import load_batch
from zcnas.scoring import resolve
from zcnas.scoring import score_key
from zcnas.scoring import score_record
from zcnas.search.studies import report
from zcnas.search.studies import run_study
from zcnas.search.studies import runs
from zcnas.spaces import get_space
from zcnas.storage import ScoreCache


ASSET = Path(__file__).resolve().parents[1] / "assets" / "zcnas-0.1.0.db"


@pytest.fixture
def old_db(tmp_path: Path, shared_data: Path) -> tuple[str, dict]:
    db = tmp_path / "old.db"
    shutil.copy(ASSET, db)
    return f"sqlite:///{db}", json.loads(Path(f"{ASSET}.json").read_text())


def test_every_cached_score_of_0_1_0_is_a_hit(old_db: tuple[str, dict]) -> None:
    url, manifest = old_db
    cache = ScoreCache(url)  # migrations: nothing to do, nothing lost
    assert cache.count() == manifest["stored_rows"]
    space = get_space("nb201")
    assert len(manifest["scores"]) >= 25
    statuses = set()
    for entry in manifest["scores"]:
        b = entry["batch"]
        batch = load_batch(b["source"], b["batch_size"], b["seed"])
        proxy = resolve(entry["proxy"], **entry["params"])
        hit = cache.get(score_key(space, proxy, entry["arch"], batch, entry["seed"]))
        assert hit is not None, f"{entry['proxy']} on {entry['arch']} is not a cache hit"
        assert hit.status == entry["status"] and hit.value == entry["value"]
        rec = score_record(space, proxy, entry["arch"], batch, seed=entry["seed"], cache=cache)
        assert rec.cached and rec.value == entry["value"]
        statuses.add(entry["status"])
    assert statuses == {"complete", "failed"}  # the asset holds a failed score too
    assert cache.count() == manifest["stored_rows"]  # nothing was recomputed


def test_0_1_0_study_and_runs_are_read_and_continued(old_db: tuple[str, dict],
                                                     tmp_path: Path) -> None:
    url, manifest = old_db
    study = optuna.load_study(study_name="compat-smoke", storage=url)
    assert len(study.trials) == manifest["study"]["study"]["n_trials"]
    rows = runs(url, "compat-smoke")
    assert len(rows) == 1 and rows[0]["status"] == "finished"
    files = report(url, out_dir=tmp_path / "report")  # the only study: no name needed
    assert "summary.md" in files
    cfg = manifest["study"] | {"study": manifest["study"]["study"] | {"storage": url}}
    [result] = run_study(cfg, n_trials=6)  # the same config hash: the old study continues
    assert result.finished == 6 and result.ran_now == 2
