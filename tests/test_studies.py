"""Study files: validation, resumable runs, reports, and the ``zcnas run`` / ``zcnas report`` CLI."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
import subprocess
import sys
from typing import Any
import uuid

import optuna
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from zcnas.cli import main
from zcnas.exceptions import ZcnasError
from zcnas.scoring import resolve
from zcnas.search.optuna import create_study
from zcnas.search.studies import StudyConfigError
from zcnas.search.studies import load_config
from zcnas.search.studies import report
from zcnas.search.studies import run_study
from zcnas.search.studies import runs
from zcnas.search.studies import sampler_names
from zcnas.storage import get_engine


ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
BASE: dict[str, Any] = {
    "device": "cpu",
    "study": {"name": "t", "n_trials": 4, "seed": 0, "heartbeat_interval": 2},
    "space": {"name": "nb201", "params": {"channels": 4, "cells_per_stage": 1}},
    "objective": {"kind": "proxy", "proxy": "params"},
    "sampler": {"name": "TPESampler", "kwargs": {"n_startup_trials": 2}},
    "data": {"source": "synthetic", "batch_size": 4},
}


def cfg(**sections: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    for name, values in sections.items():
        out.setdefault(name, {}).update(values)
    return out


def db_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


@pytest.mark.parametrize("path", sorted(p for p in STUDIES.glob("*.toml")
                                         if "[compare]" not in p.read_text()
                                         and "[score_space]" not in p.read_text()
                                         and "[[evaluator]]" not in p.read_text()),
                         ids=lambda p: p.name)  # compare, score-space, tau-vs-compute: below
def test_shipped_study_files_validate(path: Path) -> None:
    c = load_config(path)
    for section in (c.objective, c.assist):
        if section.proxy:
            resolve(section.proxy)  # registered (an unknown name raises, naming the choices)
    assert c.study.n_trials > 0


def test_the_tau_vs_compute_study_file_builds_every_evaluator() -> None:
    """studies/oneshot_vs_zero_cost_nb201.toml is read by scripts/oneshot_vs_zero_cost.py."""
    import runpy

    script = runpy.run_path(str(STUDIES.parent / "scripts" / "oneshot_vs_zero_cost.py"))
    cfg = script["load_config"](str(STUDIES / "oneshot_vs_zero_cost_nb201.toml"))
    labels = [e["label"] for e in cfg["evaluator"]]
    assert any(e["proxy"] == "oneshot" for e in cfg["evaluator"]) and len(labels) > 5
    for entry in cfg["evaluator"]:
        assert script["make_scorer"](entry).name, entry["label"]  # registered, params accepted


@pytest.mark.parametrize("mutate, message", [
    ({"study": {"n_trial": 5}},
     r"unknown key 'n_trial' in \[study\]: did you mean 'n_trials'\? allowed: name"),
    ({"sampler": {"name": "TPE"}}, r"\[sampler\] unknown name 'TPE'.*choose one of .*TPESampler"),
    ({"sampler": {"kwargs": {"n_startup": 3}}},
     r"TPESampler has no argument 'n_startup': did you mean 'n_startup_trials'\? valid: .*seed"),
    ({"objective": {"kind": "training"}},
     r"\[objective\] kind = 'training': choose one of proxy, benchmark"),
    ({"study": {"n_trials": "ten"}}, r"\[study\] n_trials must be an integer, got 'ten'"),
    ({"objective": {"proxy": None, "kind": "proxy"}}, r"needs proxy"),
    ({"assist": {"mode": "preselect"}}, r"\[assist\] mode/warmup need proxy"),
    ({"studdy": {"name": "x"}}, r"unknown section or key 'studdy'.*did you mean 'study'"),
])
def test_bad_study_files_are_one_line_errors_and_write_nothing(mutate: dict, message: str,
                                                              sqlite_url: str) -> None:
    c = cfg(**mutate)
    if c["objective"].get("proxy") is None:
        c["objective"].pop("proxy")
    c["study"]["storage"] = sqlite_url
    with pytest.raises(StudyConfigError, match=message) as info:
        run_study(c)
    assert "\n" not in str(info.value)
    assert not db_file(sqlite_url).exists()


def test_every_optuna_sampler_is_accepted_by_name() -> None:
    names = sampler_names()
    assert {"TPESampler", "RandomSampler", "NSGAIISampler", "GPSampler", "CmaEsSampler"} <= set(names)
    assert "BaseSampler" not in names


def test_unknown_proxy_names_the_registered_ones(sqlite_url: str) -> None:
    c = cfg(objective={"proxy": "gradsing"}, study={"storage": sqlite_url})
    with pytest.raises(ZcnasError, match="unknown proxy 'gradsing'"):
        run_study(c)
    assert not db_file(sqlite_url).exists()


def test_run_is_resumable_and_exact(sqlite_url: str) -> None:
    c = cfg(study={"storage": sqlite_url})
    (r,) = run_study(c)
    assert (r.finished, r.complete, r.ran_now) == (4, 4, 4)
    (r,) = run_study(c)  # rerun: nothing to do, nothing lost
    assert (r.finished, r.ran_now) == (4, 0)
    (r,) = run_study(c, n_trials=6)
    assert (r.finished, r.ran_now) == (6, 2)
    study = optuna.load_study(study_name="t", storage=sqlite_url)
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert len({t.user_attrs["arch_key"] for t in study.trials}) >= 1
    assert study.user_attrs["zcnas_config"]["objective"]["proxy"] == "params"
    assert [row["trials_run"] for row in runs(sqlite_url, "t")] == [4, 0, 2]
    assert all(row["status"] == "finished" for row in runs(sqlite_url, "t"))


def test_changed_config_under_the_same_name_is_refused(sqlite_url: str) -> None:
    run_study(cfg(study={"storage": sqlite_url, "n_trials": 1}))
    with pytest.raises(ZcnasError, match="different configuration"):
        run_study(cfg(study={"storage": sqlite_url, "n_trials": 1}, objective={"proxy": "flops"}))


def test_seeds_can_be_added_later_but_a_seed_cannot_change(sqlite_url: str) -> None:
    c = cfg(study={"storage": sqlite_url, "seeds": [0], "n_trials": 1})
    del c["study"]["seed"]
    run_study(c)
    c["study"]["seeds"] = [0, 1]
    assert [r.ran_now for r in run_study(c)] == [0, 1]
    single = cfg(study={"storage": sqlite_url, "name": "one", "n_trials": 1, "seed": 0})
    run_study(single)
    single["study"]["seed"] = 1
    with pytest.raises(ZcnasError, match="different configuration"):
        run_study(single)


def test_bad_benchmark_metric_is_caught_before_writing(sqlite_url: str, shared_data: Path) -> None:
    c = cfg(study={"storage": sqlite_url},
            objective={"kind": "benchmark", "benchmark": "nb201", "metric": "accuracy"})
    del c["objective"]["proxy"]
    with pytest.raises(ZcnasError, match="unknown NB201 metric 'accuracy'"):
        run_study(c)
    assert not db_file(sqlite_url).exists()


def test_existing_study_with_other_direction_is_refused_before_writing(sqlite_url: str) -> None:
    create_study("t", storage=sqlite_url, directions=["minimize"])
    with pytest.raises(ZcnasError, match=r"already exists with direction\(s\) \['minimize'\]"):
        run_study(cfg(study={"storage": sqlite_url}))
    study = optuna.load_study(study_name="t", storage=sqlite_url)
    assert study.trials == []


def test_seeds_give_one_study_each_and_a_report(sqlite_url: str, shared_data: Path,
                                                tmp_path: Path) -> None:
    c = cfg(study={"storage": sqlite_url, "seeds": [0, 1], "n_trials": 3},
            objective={"benchmark": "nb201"})
    del c["study"]["seed"]
    results = run_study(c)
    assert [r.study_name for r in results] == ["t-seed0", "t-seed1"]
    written = report(sqlite_url, ["t-seed0", "t-seed1"], tmp_path / "out")
    for name in ("t-seed0_history.png", "t-seed0_budget.png", "t-seed0_trials.csv", "summary.csv",
                 "summary.md", "comparison.png"):
        assert written[name].stat().st_size > 0, name
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| t |" in md.split("Over seeds")[1]  # the seed group row


def test_benchmark_study_with_assist_and_report(sqlite_url: str, shared_data: Path,
                                                tmp_path: Path) -> None:
    c = cfg(study={"storage": sqlite_url, "n_trials": 5},
            objective={"kind": "benchmark", "benchmark": "nb201", "search_metric": "valid_12ep",
                       "metric": "test"},
            assist={"mode": "preselect", "proxy": "params", "n_candidates": 3, "warmup": 6,
                    "warmup_top_k": 2})
    del c["objective"]["proxy"]
    c["space"] = {"name": "nb201"}
    (r,) = run_study(c)
    assert r.finished == 5
    study = optuna.load_study(study_name="t", storage=sqlite_url)
    trials = study.trials
    assert [t.user_attrs.get("warmup_rank") for t in trials[:2]] == [0, 1]
    assert all(t.user_attrs["prescreen_n_candidates"] == 3 for t in trials[2:])
    assert all(t.user_attrs["train_seconds"] > 0 for t in trials)
    written = report(sqlite_url, "t", tmp_path)
    rows = (tmp_path / "t_trials.csv").read_text().splitlines()
    assert len(rows) == 6 and "cum_proxy_seconds" in rows[0]
    assert written["t_budget.png"].stat().st_size > 0


def test_multi_objective_study_reports_a_pareto_front(sqlite_url: str, tmp_path: Path) -> None:
    c = cfg(study={"storage": sqlite_url, "n_trials": 4},
            objective={"objectives": ["proxy", "params"], "proxy": "flops"},
            sampler={"name": "NSGAIISampler", "kwargs": {"population_size": 2}})
    (r,) = run_study(c)
    assert isinstance(r.best_value, list) and r.best_value
    written = report(sqlite_url, "t", tmp_path)
    assert written["t_pareto.png"].stat().st_size > 0


def test_report_of_unknown_study_names_the_existing_ones(sqlite_url: str, tmp_path: Path) -> None:
    run_study(cfg(study={"storage": sqlite_url, "n_trials": 1}))
    with pytest.raises(ZcnasError, match="no study 'nope'.*it has: t"):
        report(sqlite_url, "nope", tmp_path)


def test_report_never_creates_a_database(tmp_path: Path) -> None:
    with pytest.raises(ZcnasError, match="no database file"):
        report(f"sqlite:///{tmp_path / 'typo.db'}", "t", tmp_path / "out")
    assert not (tmp_path / "typo.db").exists()


def _toml(path: Path, storage: str) -> Path:
    text = (STUDIES / "smoke.toml").read_text()
    text = text.replace("[study]\n", f"[study]\nstorage = \"{storage}\"\n")
    path.write_text(text)
    return path


def test_cli_run_and_report(sqlite_url: str, tmp_path: Path, shared_data: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    f = _toml(tmp_path / "s.toml", sqlite_url)
    assert main(["run", str(f), "--n-trials", "3"]) == 0
    assert "smoke: 3/3 finished (3 COMPLETE, 0 FAIL), 3 run now" in capsys.readouterr().out
    out = str(tmp_path / "r")
    assert main(["report", "--storage", sqlite_url, "--study", "smoke", "--out", out]) == 0
    assert (tmp_path / "r" / "smoke_history.png").is_file()


@pytest.mark.postgres
def test_passwords_are_never_stored_or_printed(postgres_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # the test server trusts every local connection, so any password is accepted
    url = make_url(postgres_url).set(password="secret").render_as_string(hide_password=False)
    name = f"pw-{uuid.uuid4().hex[:8]}"
    f = tmp_path / "pw.toml"
    f.write_text((STUDIES / "smoke.toml").read_text().replace('name = "smoke"', f'name = "{name}"'))
    assert main(["run", str(f), "--storage", url, "--n-trials", "1"]) == 0
    out = capsys.readouterr()
    assert name in out.out and "secret" not in out.out + out.err
    study = optuna.load_study(study_name=name, storage=url)
    assert "secret" not in json.dumps(study.user_attrs)
    assert "secret" not in json.dumps(runs(url, name), default=str)
    with get_engine(url).connect() as conn:
        stored = conn.execute(text("SELECT config_json FROM zcnas_runs")).scalars().all()
    assert stored and not any("secret" in c for c in stored)


def test_cli_unreachable_storage_exits_2_without_the_password(tmp_path: Path) -> None:
    f = _toml(tmp_path / "s.toml", "sqlite:///unused.db")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "zcnas", "run", str(f), "--storage",
         "postgresql+psycopg2://u:secret@127.0.0.1:1/x"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.startswith("zcnas: error: cannot open database") and len(err.splitlines()) == 1
    assert "secret" not in proc.stderr + proc.stdout
    assert list(tmp_path.iterdir()) == [f]  # nothing written


def test_cli_typo_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text((STUDIES / "smoke.toml").read_text().replace("n_trials", "ntrials"))
    assert main(["run", str(f), "--storage", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'ntrials' in [study]" in err and not (tmp_path / "x.db").exists()
