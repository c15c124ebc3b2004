"""``zcnas compare``: the assisted-vs-vanilla grid runs, is stored, resumes and reports."""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path
import sys

import optuna
import pytest

from zcnas.cli import main as cli_main
from zcnas.search.compare import compare
from zcnas.search.compare import load_compare
from zcnas.search.nni import INSTALL_HINT
from zcnas.search.studies import StudyConfigError
from zcnas.storage import ScoreCache


STUDIES = Path(__file__).resolve().parent.parent / "studies"
ON_CI = os.environ.get("CI", "").lower() in ("true", "1")

TINY = """
[compare]
name = "tiny"
datasets = ["cifar10"]
seeds = 20
budget_queries = 100
budget_seconds = { cifar10 = 700 }
algorithms = ["rs", "rea", "reinforce", "tpe"]
modes = ["vanilla", "params"]
n_candidates = 3

[data]
source = "synthetic"
batch_size = 4

[algorithm.rs]
backend = "optuna"
sampler = "RandomSampler"
proposals = "uniform"

[algorithm.rea]
backend = "nni"
strategy = "RegularizedEvolution"
kwargs = { population_size = 3, sample_size = 2 }

[algorithm.reinforce]
backend = "nni"
strategy = "PolicyBasedRL"
kwargs = { samples_per_update = 3 }

[algorithm.tpe]
backend = "optuna"
sampler = "TPESampler"
kwargs = { n_startup_trials = 3 }

[mode.params]
proxy = "params"

[quick]
seeds = 2
budget_queries = 6
"""


def _nni_available() -> bool:
    if importlib.util.find_spec("nni") is not None:
        return True
    if ON_CI:
        pytest.fail(f"CI=true but NNI is missing, so the NNI algorithms would be skipped: "
                    f"{INSTALL_HINT}")
    return False


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _trial_total(url: str) -> int:
    return sum(s.n_trials for s in optuna.get_all_study_summaries(storage=url))


def test_quick_grid_every_cell_stored_and_rerun_reuses_everything(
        sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    has_nni = _nni_available()
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    out = tmp_path / "out"
    assert cli_main(["compare", str(study), "--quick", "--storage", sqlite_url,
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "16 runs now, 0 already finished" in printed if has_nni else "8 runs now" in printed
    assert "| dataset | algorithm | mode |" in printed  # the table itself, not only its paths

    summary = _read(out / "summary.csv")
    cells = {(r["algorithm"], r["mode"]) for r in summary}
    assert cells == {(a, m) for a in ("rs", "rea", "reinforce", "tpe")
                     for m in ("vanilla", "params-assisted")}
    for r in summary:
        if r["backend"] == "nni" and not has_nni:
            assert r["status"] == f"skipped: {INSTALL_HINT}"
            continue
        assert r["status"] == "done" and r["seeds"] == "2"
        acc = float(r["test_at_query_budget_mean"])
        assert 10.0 <= acc <= 94.38  # a real NB201 200-epoch test accuracy
        assert float(r["train_seconds_mean"]) > 6 * 80  # 6 simulated 12-epoch trainings
        assert (float(r["proxy_seconds_mean"]) > 0) == (r["mode"] == "params-assisted")
    tests = _read(out / "paired_tests.csv")
    assert {(t["algorithm"], t["metric"]) for t in tests if t["n"] == "2"} == {
        (a, m) for a in (("rs", "rea", "reinforce", "tpe") if has_nni else ("rs", "tpe"))
        for m in ("test_at_query_budget", "test_at_seconds_budget",
                  "test_at_seconds_budget_paper")}
    md = (out / "summary.md").read_text()
    assert "Wilcoxon" in md and "| cifar10 | rea | params-assisted |" in md
    assert (out / "curves_cifar10.png").stat().st_size > 10_000

    # every run is a stored study with exactly the budget of finished trials
    names = set(optuna.get_all_study_names(storage=sqlite_url))
    ran = [r for r in _read(out / "cells.csv") if r["status"] == "done"]
    assert len(ran) == (16 if has_nni else 8)
    for r in ran:
        assert r["study"] in names and r["study"].startswith("tiny-quick-cifar10-")
        s = optuna.load_study(study_name=r["study"], storage=sqlite_url)
        assert len(s.trials) == 6
        assert s.user_attrs["zcnas_compare"]["seed"] == int(r["seed"])

    # a rerun runs nothing: no new trials, no new proxy scores, the same table
    trials, scores = _trial_total(sqlite_url), ScoreCache(sqlite_url).count()
    result = compare(study, quick=True, storage=sqlite_url, out=out)
    assert result.ran == [] and len(result.skipped_done) == len(ran)
    assert _trial_total(sqlite_url) == trials
    assert ScoreCache(sqlite_url).count() == scores
    assert _read(out / "summary.csv") == summary


def test_gradsign_assisted_cells_charge_the_proxy_once(sqlite_url: str, tmp_path: Path,
                                                       shared_data: Path) -> None:
    has_nni = _nni_available()
    cfg = {
        "compare": {"name": "gs", "seeds": [3], "budget_queries": 4, "n_candidates": 2,
                    "algorithms": ["rs", "rea"] if has_nni else ["rs"],
                    "modes": ["vanilla", "gradsign"]},
        "data": {"source": "cifar10", "batch_size": 4},
        "algorithm": {"rs": {"backend": "optuna", "sampler": "RandomSampler"},
                      "rea": {"backend": "nni", "strategy": "RegularizedEvolution",
                              "kwargs": {"population_size": 2, "sample_size": 2}}},
        "mode": {"gradsign": {"proxy": "gradsign"}},
    }
    result = compare(cfg, storage=sqlite_url, out=tmp_path)
    assert len(result.ran) == (4 if has_nni else 2)
    cells = {(r["algorithm"], r["mode"]): r for r in _read(tmp_path / "cells.csv")}
    assisted = cells[("rs", "gradsign-assisted")]
    # two candidates per query, all scored: 4..8 distinct architectures, each charged once
    assert 4 <= int(assisted["proxy_evals"]) <= 8
    assert float(assisted["proxy_seconds"]) > 0
    assert float(cells[("rs", "vanilla")]["proxy_seconds"]) == 0
    if has_nni:
        rea = cells[("rea", "gradsign-assisted")]
        assert int(rea["proxy_evals"]) >= 2 and float(rea["proxy_seconds"]) > 0
    # the scores are in the SQL cache: the same grid with more seeds reuses them for seed 3
    scores = ScoreCache(sqlite_url).count()
    again = compare(cfg, storage=sqlite_url, out=tmp_path)
    assert again.ran == [] and ScoreCache(sqlite_url).count() == scores


def test_without_nni_its_algorithms_are_skipped_with_the_install_hint(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "nni" or name.startswith("nni."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "nni", None)  # `import nni` raises ImportError
    cfg = {"compare": {"name": "nonni", "seeds": 1, "budget_queries": 2,
                       "algorithms": ["rs", "rea"], "modes": ["vanilla"]},
           "algorithm": {"rs": {"backend": "optuna", "sampler": "RandomSampler"},
                         "rea": {"backend": "nni", "strategy": "RegularizedEvolution"}}}
    result = compare(cfg, storage=sqlite_url, out=tmp_path)
    assert result.ran == ["nonni-cifar10-rs-vanilla-seed0"]
    assert result.skipped == {"nonni-cifar10-rea-vanilla-seed0": INSTALL_HINT}
    assert f"Skipped: {INSTALL_HINT}" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize("mutate, message", [
    ({"compare": {"name": "x", "algorithms": ["nope"]}}, "algorithm 'nope' has no"),
    ({"compare": {"name": "x", "datasets": ["mnist"]}}, "unknown dataset 'mnist'"),
    ({"compare": {"name": "x", "budget_querys": 5}}, "unknown key 'budget_querys'"),
    ({"compare": {"name": "x"}, "algorithm": {"rs": {"backend": "keras"}}},
     "backend = .keras.: choose one of optuna, nni"),
    ({"compare": {"name": "x"}, "algorithm": {"rs": {"backend": "optuna",
                                                     "sampler": "TPE"}}}, "unknown name 'TPE'"),
])
def test_bad_compare_files_are_one_line_errors_and_write_nothing(
        mutate: dict, message: str, tmp_path: Path) -> None:
    raw = {"algorithm": {"rs": {"backend": "optuna", "sampler": "RandomSampler"}}}
    raw.update(mutate)
    db = tmp_path / "never.db"
    with pytest.raises(StudyConfigError, match=message):
        compare(raw, storage=f"sqlite:///{db}", out=tmp_path / "out")
    assert not db.exists()


def test_shipped_compare_files_declare_the_headline_grid() -> None:
    full = load_compare(STUDIES / "gradsign_vs_vanilla_nb201.toml")
    assert [a.name for a in full.algorithms] == ["rs", "rea", "reinforce", "tpe"]
    assert [m.proxy for m in full.modes] == [None, "gradsign"]
    assert full.datasets == ["cifar10", "cifar100", "imagenet16"]
    assert full.search_metric == "valid_12ep" and full.metric == "test"
    assert len(full.cells()) == 4 * 2 * 20 * 3 and full.budget_queries == 100
    quick = load_compare(STUDIES / "gradsign_vs_vanilla_nb201.toml", quick=True)
    assert quick.name.endswith("-quick") and len(quick.cells()) == 4 * 2 * 2
    assert len(load_compare(STUDIES / "gradsign_vs_vanilla_nb201.toml", seeds=3).seeds) == 3
    load_compare(STUDIES / "gradsign_vs_vanilla_nb201_c10.toml")


def test_paired_test_brackets_the_mean_difference() -> None:
    from zcnas.analysis import paired_test

    t = paired_test([94.0, 93.8, 94.1, 93.9, 94.2, 94.0], [93.5, 93.6, 93.7, 93.4, 93.9, 93.5])
    assert t["n"] == 6 and t["mean_diff"] == pytest.approx(0.4, abs=1e-9)
    assert 0 < t["ci_low"] < 0.4 < t["ci_high"]
    assert t["wilcoxon_p"] == pytest.approx(0.03125)  # all 6 positive: exact 2 / 2**6
    same = paired_test([93.0, 94.0], [93.0, 94.0])
    assert same["mean_diff"] == 0 and same["wilcoxon_p"] == 1.0


def test_holm_adjusts_the_best_of_several_modes() -> None:
    from zcnas.analysis import holm

    # by hand: sorted 0.01, 0.02, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.02), max(0.04, 1 x 0.04)
    assert holm([0.04, 0.01, None, 0.02]) == pytest.approx([0.04, 0.03, None, 0.04])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([0.012]) == [0.012]  # one test: nothing to adjust


def test_report_adjusts_p_over_the_modes_of_one_algorithm_only() -> None:
    from zcnas.search._compare_report import _add_holm

    def t(algo: str, mode: str, p: float, metric: str = "test_at_query_budget") -> dict:
        return {"dataset": "cifar10", "algorithm": algo, "mode": mode, "vs": "vanilla",
                "metric": metric, "wilcoxon_p": p}

    tests = [t("rea", "warm", 0.01), t("rea", "native", 0.02), t("tpe", "warm", 0.01),
             t("rea", "warm", 0.01, metric="test_at_seconds_budget")]
    _add_holm(tests)
    assert [x["holm_p"] for x in tests] == pytest.approx([0.02, 0.02, 0.01, 0.01])


def _register_setup_evaluator() -> None:
    """``test_setup_cost``: ``params`` as an evaluator with a one-time setup of 1000 s."""
    from zcnas.scoring import EVALUATORS
    from zcnas.scoring import Evaluator
    from zcnas.scoring import register_evaluator
    from zcnas.scoring import score_record

    if EVALUATORS.is_registered("test_setup_cost"):
        return

    @register_evaluator("test_setup_cost")
    class SetupCost(Evaluator):
        uses_data = False
        uses_labels = False

        def setup_seconds(self, space, batch, *, seed, cache=None) -> float:  # noqa: ANN001
            return 1000.0

        def evaluate(self, space, arch, batch, *, seed, device, cache):  # noqa: ANN001, ANN201
            rec = score_record(space, "params", arch, batch, seed=seed, device=device)
            return rec.value, rec.reason, 0.5


def test_an_evaluators_setup_is_charged_once_per_run(sqlite_url: str, tmp_path: Path) -> None:
    """A supernet's training (``setup_seconds``) enters the honest seconds once per run, on top
    of the per-architecture seconds; the paper convention charges neither."""
    _register_setup_evaluator()
    cfg = {"compare": {"name": "setup", "seeds": 1, "budget_queries": 3, "n_candidates": 2,
                       "algorithms": ["rs"], "modes": ["vanilla", "sn"],
                       "budget_seconds": {"cifar10": 1e6}},
           "data": {"source": "synthetic", "batch_size": 4},
           "algorithm": {"rs": {"backend": "optuna", "sampler": "RandomSampler"}},
           "mode": {"sn": {"proxy": "test_setup_cost"}}}
    compare(cfg, storage=sqlite_url, out=tmp_path)
    cells = _read(tmp_path / "cells.csv")
    assert {r["mode"] for r in cells} == {"vanilla", "test_setup_cost-assisted"}
    for r in cells:
        if r["mode"] == "vanilla":
            assert float(r["proxy_seconds"]) == 0
            continue
        evals = int(r["proxy_evals"])
        assert 3 <= evals <= 6  # 2 candidates per query, each charged once
        assert float(r["proxy_seconds"]) == pytest.approx(1000.0 + 0.5 * evals)


def test_the_shipped_oneshot_compare_file_loads() -> None:
    cfg = load_compare(STUDIES / "oneshot_assisted_nb201.toml")
    assert [m.proxy for m in cfg.modes] == [None, "oneshot"]
    assert cfg.modes[1].proxy_params["epochs"] == 1 and len(cfg.cells()) == 2 * 2 * 2
