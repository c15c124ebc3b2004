"""``zcnas score-space``: a space slice scored by several workers through one SQL database."""

from __future__ import annotations

import os
from pathlib import Path
import random
import subprocess
import sys
import warnings

from conftest import assert_recovered
from conftest import kill_mid_trial
import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
import pytest
from sqlalchemy import text

from zcnas.cli import main
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Proxy
from zcnas.proxies import register_proxy
from zcnas.search.optuna import suggest_arch
from zcnas.search.scale import SliceSampler
from zcnas.search.scale import arch_index
from zcnas.search.scale import parse_slice
from zcnas.search.scale import score_space
from zcnas.spaces import get_space
from zcnas.storage import get_engine


ROOT = Path(__file__).resolve().parents[1]


@register_proxy("nan_on_pool_test")
class _NanOnPool(Proxy):
    """Test proxy: NaN for cells whose last edge is avg_pool_3x3, else the parameter count."""

    uses_data = False
    uses_labels = False

    def compute(self, model, batch):  # noqa: ANN001, ANN201
        if type(model.cells[0].edges["edge_2_3"]).__name__ == "AvgPool2d":
            return float("nan")
        return sum(p.numel() for p in model.parameters()) / 1e6


def _fresh_seed() -> int:
    """A weight seed no other test used: the score keys (and the study) are new even in a
    shared PostgreSQL database."""
    return random.SystemRandom().randrange(1, 2**30)


def _score_rows(url: str, proxy: str, seed: int) -> list[tuple[str, int]]:
    with get_engine(url).connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT arch_key, COUNT(*) FROM zcnas_scores WHERE proxy = :p AND seed = :s "
            "GROUP BY arch_key"), {"p": proxy, "s": seed}).all()]


# --- pure helpers -------------------------------------------------------------------------------
def test_arch_index_inverts_arch_at() -> None:
    space = get_space("nb201")
    for i in [0, 1, 4, 5, 624, 7777, space.size() - 1]:
        assert arch_index(space, space.arch_at(i)) == i


def test_parse_slice() -> None:
    assert parse_slice(None, 100) == (0, 100)
    assert parse_slice("10:20", 100) == (10, 20)
    assert parse_slice("90:", 100) == (90, 100)
    assert parse_slice(":5", 100) == (0, 5)
    for bad in ("5:2", "3:3", "0:101", "-1:5", "a:b", "1:2:3", "7"):
        with pytest.raises(ZcnasError, match="slice"):
            parse_slice(bad, 100)


def test_slice_sampler_counts_fresh_trials_and_keeps_retries_on_their_arch(sqlite_url: str) -> None:
    space = get_space("nb201")
    study = optuna.create_study(storage=sqlite_url, sampler=SliceSampler(space, 10, 14))
    archs = []
    t0 = study.ask()
    archs.append(suggest_arch(t0, space))
    study.tell(t0, 1.0)
    t1 = study.ask()  # dies before storing any parameter
    study.tell(t1, state=TrialState.FAIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback()(study, study.trials[1])
    for _ in range(3):  # the retry of t1 (number 2), then fresh trials 3 and 4
        t = study.ask()
        archs.append(suggest_arch(t, space))
        study.tell(t, 1.0)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert archs == [space.arch_at(i) for i in (10, 11, 12, 13)]
    with pytest.raises(ZcnasError, match="outside the slice 10:14"):
        suggest_arch(study.ask(), space)


# --- several workers: each architecture exactly once ---------------------------------------------
def _three_workers(url: str, start: int = 100, n: int = 40) -> None:
    space = get_space("nb201")
    seed = _fresh_seed()
    summary = score_space(space, "params", storage=url, data="synthetic", batch_size=2,
                          seed=seed, start=start, stop=start + n, workers=3,
                          heartbeat_interval=1, progress=False)
    assert summary["done"] and summary["worker_errors"] == []
    assert summary["total"] == summary["complete"] == summary["stored_scores"] == n
    assert summary["failed"] == 0

    study = optuna.load_study(study_name=summary["study_name"], storage=url)
    trials = study.get_trials()
    assert len(trials) == n and all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(n))
    expected = {space.key(space.arch_at(i)) for i in range(start, start + n)}
    assert sorted(t.user_attrs["space_index"] for t in trials) == list(range(start, start + n))
    assert {t.user_attrs["arch_key"] for t in trials} == expected
    assert sum(not t.user_attrs["cached"] for t in trials) == n  # nothing computed twice
    rows = _score_rows(url, "params", seed)
    assert {k for k, _ in rows} == expected and all(c == 1 for _, c in rows)  # none lost or doubled
    # the trial value is the stored score: params of arch_at(i), rebuilt here
    t0 = next(t for t in trials if t.number == 0)
    model = space.build(space.arch_at(start))
    assert t0.value == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)

    again = score_space(space, "params", storage=url, data="synthetic", batch_size=2, seed=seed,
                        start=start, stop=start + n, workers=1, progress=False)
    assert again["done"] and again["finished_during_run"] == 0 and again["ran_here"] == 0
    assert len(study.get_trials()) == n


@pytest.mark.slow
def test_three_workers(storage_url: str) -> None:
    _three_workers(storage_url)


# --- a killed worker ----------------------------------------------------------------------------
def _cli(tmp_path: Path, url: str, seed: int, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}",
           "SLOW_SECONDS": str(seconds), "OMP_NUM_THREADS": "1"}
    code = "import slowproxy, sys; from zcnas.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "score-space", "--proxy", "slow_test", "--storage", url,
         "--slice", "20:26", "--seed", str(seed), "--data", "synthetic", "--batch-size", "2",
         "--heartbeat-interval", "1", "--grace-period", "2", "--no-progress"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_and_rerun(tmp_path: Path, url: str) -> None:
    seed = _fresh_seed()
    proc = _cli(tmp_path, url, seed, 1.5)

    def find() -> optuna.Study | None:
        names = [n for n in optuna.get_all_study_names(url) if f":seed{seed}:" in n]
        return optuna.load_study(study_name=names[0], storage=url) if names else None

    name = kill_mid_trial(proc, find, delay=0.5)  # inside the 1.5 s score, after a heartbeat
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    before = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
    stale = [t for t in trials if t.state == TrialState.RUNNING]
    assert len(stale) == 1

    rerun = _cli(tmp_path, url, seed, 0.1)
    out, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err
    assert "6/6 finished (6 COMPLETE, 0 FAIL, 0 RUNNING), 6 scores stored" in out

    trials = {t.number: t for t in optuna.load_study(study_name=name,
                                                     storage=url).get_trials()}
    killed, retry = assert_recovered(trials, before, stale[0].number)
    assert retry.params == killed.params  # the same architecture, reclaimed
    complete = [t for t in trials.values() if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["space_index"] for t in complete) == list(range(20, 26))
    rows = _score_rows(url, "slow_test", seed)
    assert len(rows) == 6 and all(c == 1 for _, c in rows)


@pytest.mark.slow
def test_killed_worker_is_reclaimed(tmp_path: Path, storage_url: str) -> None:
    _kill_and_rerun(tmp_path, storage_url)


# --- failed scores ------------------------------------------------------------------------------
def test_nan_scores_are_fail_with_reason_and_not_retried(sqlite_url: str) -> None:
    space = get_space("nb201")
    # indices 0..9: the last edge cycles through the 5 ops, so 2 of them are avg_pool_3x3
    pools = [i for i in range(10) if space.arch_at(i)["edge_2_3"] == "avg_pool_3x3"]
    assert len(pools) == 2
    kwargs = dict(storage=sqlite_url, data="synthetic", batch_size=2, stop=10, progress=False,
                  heartbeat_interval=1)
    s = score_space(space, "nan_on_pool_test", **kwargs)
    assert s["done"] and s["complete"] == 8 and s["failed"] == 2 and s["stored_scores"] == 10
    assert sorted(f["index"] for f in s["failures"]) == pools
    assert all("non-finite" in f["reason"] for f in s["failures"])
    again = score_space(space, "nan_on_pool_test", **kwargs)
    assert again["done"] and again["ran_here"] == 0 and again["failed"] == 2
    study = optuna.load_study(study_name=s["study_name"], storage=sqlite_url)
    assert len(study.get_trials()) == 10


def test_nan_proxy_sanity() -> None:
    """The NaN test proxy really distinguishes the two kinds of cell (guards the test above)."""
    space = get_space("nb201")
    proxy = _NanOnPool()
    values = [proxy.compute(space.build(space.arch_at(i)), None) for i in (3, 4)]
    assert np.isfinite(values[0]) != np.isfinite(values[1])


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--proxy", "no_such_proxy"], "no_such_proxy"),
    (["--proxy", "params", "--space", "no_such_space"], "no_such_space"),
    (["--proxy", "params", "--slice", "5:2"], "slice 5:2"),
    (["--proxy", "params", "--slice", "0:15626"], "15625"),
    (["--proxy", "params", "--slice", "x"], "START:STOP"),
    (["--proxy", "params", "--workers", "0"], "--workers"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(args: list[str], message: str,
                                                      tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db = tmp_path / "z.db"
    code = main(["score-space", "--storage", f"sqlite:///{db}", "--data", "synthetic",
                 "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zcnas: error: ") and message in lines[0]
    assert not db.exists()


@pytest.mark.parametrize("url", [
    "sqlite:////nonexistent-zcnas-dir/sub/z.db",
    "postgresql+psycopg2://zcnas:secret@127.0.0.1:1/zcnas",
])
def test_unreachable_storage_is_one_line_exit_2(url: str, capsys) -> None:  # noqa: ANN001
    code = main(["score-space", "--proxy", "params", "--storage", url, "--data", "synthetic",
                 "--slice", "0:3", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zcnas: error: cannot open database")
    assert "secret" not in err
    assert not Path("/nonexistent-zcnas-dir").exists()
