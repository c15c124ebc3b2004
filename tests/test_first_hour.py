"""What a newcomer hits in the first hour (issue 12) and the layering's promises (issue 11):
fast start-up, counts that must be positive, one-line errors naming fixes that exist, deprecated
flag spellings that still work, a report that finds the only study, studies that describe
themselves, a device that fails fast."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import optuna
import pytest

from zcnas.cli import main
from zcnas.data import synthetic_batch
from zcnas.exceptions import ScoreError
from zcnas.search.optuna import BenchmarkObjective
from zcnas.search.optuna import ProxyObjective
from zcnas.search.optuna import create_study
from zcnas.search.studies import report


ROOT = Path(__file__).resolve().parents[1]


def _one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zcnas: error: "), err
    for fragment in fragments:
        assert fragment in err[0], err[0]
    return err[0]


def test_help_and_version_import_neither_torch_nor_optuna() -> None:
    code = ("import sys; from zcnas.cli import main; "
            "rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('torch', 'optuna', 'sqlalchemy') if m in sys.modules))")
    for args in (["--version"], ["--help"], ["score", "--help"], ["correlate", "--n", "0"]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ}, check=False)
        assert out.stdout.strip().splitlines()[-1] == "[]", (args, out.stdout, out.stderr)


@pytest.mark.parametrize("args, fragment", [
    (["correlate", "--n", "0"], "--n: must be at least 1, got 0"),
    (["correlate", "--n", "-3"], "--n: must be at least 1, got -3"),
    (["run", "studies/smoke.toml", "--n-trials", "0"], "--n-trials: must be at least 1"),
    (["bench", "--n", "0"], "--n: must be at least 1"),
    (["score-space", "--proxy", "params", "--workers", "0"], "--workers: must be at least 1"),
])
def test_counts_must_be_positive(args: list[str], fragment: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ZCNAS_STORAGE", f"sqlite:///{tmp_path / 'never.db'}")
    assert main(args) == 2
    _one_line_error(capsys, fragment, "--help")
    assert not (tmp_path / "never.db").exists()


def test_run_file_with_zero_trials_is_refused(tmp_path: Path) -> None:
    from zcnas.search.studies import StudyConfigError
    from zcnas.search.studies import run_study

    cfg = {"study": {"name": "z", "n_trials": 0, "storage": f"sqlite:///{tmp_path / 'z.db'}"},
           "objective": {"kind": "proxy", "proxy": "params"}}
    with pytest.raises(StudyConfigError, match="n_trials must be at least 1"):
        run_study(cfg)
    assert not (tmp_path / "z.db").exists()


def test_deprecated_spellings_still_work_with_a_note(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    code = main(["correlate", "--proxies", "params", "--n", "4", "--quiet", "--data",
                 "synthetic", "--batch-size", "4", "--storage", db, "--bootstrap", "5",
                 "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0
    assert "--proxies is deprecated; use --proxy" in captured.err
    assert "--quiet is deprecated; use --no-progress" in captured.err
    assert captured.out.splitlines()[1].startswith("params")


def test_bench_with_no_proxy_list_runs_every_single_network_proxy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from zcnas.proxies import list_proxies
    from zcnas.scoring import bench

    monkeypatch.setattr("zcnas.scoring._bench.list_proxies", lambda: ["params", "flops"])
    result = bench(n=1, batch_size=2, repeats=1, data="synthetic", loops=False, progress=False)
    assert set(result["summary"]) == {"floor", "params", "flops"}
    assert "ensemble" not in list_proxies() and "learned_ensemble" not in list_proxies()


def test_report_of_the_only_study_needs_no_name_and_reads_its_description(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    objective = ProxyObjective("nb201", "params", synthetic_batch(4), benchmark="nb201",
                               dataset="cifar10")
    study = create_study("api-study", storage=url, directions=objective.directions,
                         sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=3)
    info = study.user_attrs["zcnas_study"]
    assert info["kind"] == "proxy" and info["objective"] == "params"
    assert info["benchmark"] == "nb201" and study.metric_names == ["params"]
    files = report(url, out_dir=tmp_path / "out")
    summary = (tmp_path / "out" / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| api-study"))
    assert "| proxy | params |" in row and "?" not in row
    assert "summary.csv" in files


def test_report_of_several_studies_names_them(tmp_path: Path) -> None:
    from zcnas.exceptions import ZcnasError

    url = f"sqlite:///{tmp_path / 'r.db'}"
    for name in ("a", "b"):
        create_study(name, storage=url)
    with pytest.raises(ZcnasError, match="holds 2 studies.*--study NAME: a, b"):
        report(url, out_dir=tmp_path / "out")


def test_benchmark_objective_describes_its_study(tmp_path: Path) -> None:
    objective = BenchmarkObjective("nb201", "nb201", dataset="cifar100", metric="test",
                                   search_metric="valid_12ep", cost_model=None)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=2)
    info = study.user_attrs["zcnas_study"]
    assert (info["kind"], info["benchmark"], info["dataset"], info["metric"]) == (
        "benchmark", "nb201", "cifar100", "test")
    assert study.metric_names == ["valid_12ep"]


def test_a_missing_gpu_fails_at_construction_not_in_every_trial() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: nothing to fail")
    with pytest.raises(ScoreError, match="no CUDA GPU is visible; use cpu or auto"):
        ProxyObjective("nb201", "params", synthetic_batch(4), device="cuda")


def test_plain_postgresql_urls_use_the_installed_driver() -> None:
    import importlib.util

    from zcnas.storage._url import driver_url

    url = "postgresql://user:pw@127.0.0.1:5432/db"
    if importlib.util.find_spec("psycopg") is not None:
        assert driver_url(url) == url
    elif importlib.util.find_spec("psycopg2") is not None:
        assert driver_url(url) == "postgresql+psycopg2://user:pw@127.0.0.1:5432/db"
    else:
        pytest.fail("the postgres extra is part of the test environment (scripts/setup.sh)")
    assert driver_url("sqlite:///x.db") == "sqlite:///x.db"


def test_missing_nb201_table_names_fixes_that_exist(tmp_path: Path) -> None:
    from zcnas.benchmarks import get_benchmark
    from zcnas.exceptions import DataError

    with pytest.raises(DataError) as info:
        get_benchmark("nb201", path=str(tmp_path / "nope.csv")).query("x")
    message = str(info.value)
    assert "ZCNAS_DATA" in message and "benchmark_params" in message and "--benchmark-path" in \
        message


def test_the_template_placeholder_is_not_installed_by_setup() -> None:
    text = (ROOT / "scripts" / "setup.sh").read_text()
    install_lines = [line for line in text.splitlines() if "pip install" in line]
    assert not any("plugins/template" in line for line in install_lines)
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert "pip uninstall -q -y zcnas-myproxy" in test_sh


def test_score_json_names_what_made_the_score(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    key = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
          "nor_conv_1x1~2|"
    assert main(["score", "--proxy", "params", "--arch", key, "--data", "synthetic",
                 "--batch-size", "4", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"seed", "batch_id", "zcnas_version", "device"} <= set(rec)


def test_a_failed_score_leaves_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["score", "--proxy", "gradsign", "--arch", "|no_such_op~0|"]) == 2
    _one_line_error(capsys, "arch")
    assert not (tmp_path / "zcnas.db").exists()


def test_nni_argument_errors_print_one_line_and_no_banners(tmp_path: Path) -> None:
    pytest.importorskip("nni", reason="the nni extra is not installed (CI installs it)")
    run = subprocess.run([sys.executable, "-m", "zcnas", "nni", "--strategy", "Evolution",
                          "--proxy", "params", "--n-trials", "2"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zcnas: error: "), run.stderr
    assert "Gym" not in run.stderr + run.stdout and "might not be supported" not in run.stderr
