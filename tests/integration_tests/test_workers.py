"""Several ``zcnas run`` worker processes on one study, and a worker killed mid-trial."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import subprocess
import sys
import uuid

from conftest import assert_recovered
from conftest import kill_mid_trial
from conftest import slow_study_file
import optuna
from optuna.trial import TrialState
import pytest

from zcnas.search.optuna import trial_counts
from zcnas.search.studies import runs


ROOT = Path(__file__).resolve().parents[2]


def _setup(tmp_path: Path, storage: str, name: str, n_trials: int, *, grace: int = 3) -> Path:
    # a fresh init seed per study: the score cache (shared by the tests on one PostgreSQL
    # database) must not turn the slow proxy's trials into instant cache hits
    init_seed = int(hashlib.sha256(name.encode()).hexdigest()[:7], 16)  # < 2**31 (SQL INTEGER)
    return slow_study_file(tmp_path / "study.toml", storage, name, n_trials,
                           init_seed=init_seed, grace=grace)


def _worker(tmp_path: Path, study: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}",
           "SLOW_SECONDS": str(seconds), "OMP_NUM_THREADS": "1"}
    code = "import slowproxy, sys; from zcnas.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "run", str(study)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _three_workers_share_one_study(tmp_path: Path, storage: str) -> None:
    name = f"workers-{uuid.uuid4().hex[:8]}"
    study_file = _setup(tmp_path, storage, name, n_trials=18)
    procs = [_worker(tmp_path, study_file, 0.3) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.trials
    assert len(trials) == 18  # exact: no worker overshot
    assert sorted(t.number for t in trials) == list(range(18))  # none duplicated or lost
    assert all(t.state == TrialState.COMPLETE for t in trials)
    worker_rows = runs(storage, name)
    assert len(worker_rows) == 3 and sum(r["trials_run"] for r in worker_rows) == 18
    assert all(r["status"] == "finished" for r in worker_rows)


def _kill_and_resume(tmp_path: Path, storage: str) -> None:
    name = f"kill-{uuid.uuid4().hex[:8]}"
    study_file = _setup(tmp_path, storage, name, n_trials=5, grace=3)
    # 4 s trials: the kill must land inside a trial, even when polling the database is slow
    proc = _worker(tmp_path, study_file, 4.0)

    def find() -> optuna.Study | None:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None

    kill_mid_trial(proc, find)
    study = optuna.load_study(study_name=name, storage=storage)
    before = {t.number: t.value for t in study.trials if t.state == TrialState.COMPLETE}
    stale = [t for t in study.trials if t.state == TrialState.RUNNING]
    assert len(stale) == 1

    rerun = _worker(tmp_path, study_file, 0.2)
    out, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err

    study = optuna.load_study(study_name=name, storage=storage)
    trials = {t.number: t for t in study.trials}
    killed, retry = assert_recovered(trials, before, stale[0].number)
    # the retry keeps every parameter the killed trial had already stored (all of them unless it
    # was killed between two suggest calls) and evaluates that architecture
    assert killed.params.items() <= retry.params.items()
    counts = trial_counts(study)
    assert counts.complete == 5 and counts.finished == 5 and counts.running == 0
    statuses = [r["status"] for r in runs(storage, name)]
    # the killed worker never finished its row; the next run found its process gone
    assert statuses == ["killed", "finished"]


@pytest.mark.slow
def test_three_workers(tmp_path: Path, storage_url: str) -> None:
    _three_workers_share_one_study(tmp_path, storage_url)


@pytest.mark.slow
def test_kill_and_resume(tmp_path: Path, storage_url: str) -> None:
    _kill_and_resume(tmp_path, storage_url)
