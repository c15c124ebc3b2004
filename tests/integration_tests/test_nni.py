"""NNI adapter: NNI's strategies search zcnas spaces in-process and every trial lands in SQL."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
import re

import numpy as np
import optuna
import pytest

import zcnas
from zcnas.cli import main as cli_main
from zcnas.exceptions import InvalidArchError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Proxy


if os.environ.get("CI") == "true":
    import nni  # noqa: F401  (CI installs the nni extra: a missing NNI fails here, not skips)
else:
    pytest.importorskip("nni", reason="needs the nni extra: pip install 'zcnas[nni]'")

from zcnas.search import nni as zn  # noqa: E402


pytestmark = pytest.mark.nni
ROOT = Path(__file__).resolve().parents[2]
STRATEGY_KWARGS = {
    "Random": {},
    "GridSearch": {},
    "RegularizedEvolution": {"population_size": 10, "sample_size": 3},
    "PolicyBasedRL": {"samples_per_update": 10},
    "TPE": {},
}


def require_proxy(name: str) -> None:
    if name not in zcnas.list_proxies():
        if os.environ.get("CI") == "true":
            pytest.fail(f"proxy {name!r} is not registered")
        pytest.skip(f"proxy {name!r} is not registered on this branch")


@pytest.fixture(scope="module")
def tiny_batch() -> zcnas.Batch:
    return zcnas.load_batch("synthetic", 8, 0)


@pytest.fixture(scope="module")
def space() -> zcnas.SearchSpace:
    return zcnas.get_space("nb201")


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


@pytest.mark.parametrize("strategy", zn.STRATEGIES)
def test_each_strategy_runs_20_gradsign_trials_into_sql(strategy, tiny_batch, space, sqlite_url):
    require_proxy("gradsign")
    run = zn.run_strategy(space, "gradsign", strategy, n_trials=20, batch=tiny_batch, seed=0,
                          storage=sqlite_url, strategy_kwargs=STRATEGY_KWARGS[strategy])
    assert run.n_trials == 20
    study = load(sqlite_url, run.study_name)
    assert study.user_attrs["backend"] == "nni"
    assert study.user_attrs["strategy"] == strategy
    assert study.user_attrs["proxy"] == "gradsign"
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = study.trials
    assert len(trials) == 20
    for trial, (key, value) in zip(trials, run.history):
        assert trial.user_attrs["arch_key"] == key == space.key(trial.params)
        assert trial.user_attrs["strategy"] == strategy
        assert trial.value == value
    # the RL policy draws from the global torch RNG: scoring must not reset it, else every
    # sample between two policy updates would be the same architecture
    keys = [k for k, _ in run.history]
    assert len(set(keys)) >= (20 if strategy != "PolicyBasedRL" else 18)
    # the scores are in the SQL cache under the same key
    cache = zcnas.ScoreCache(sqlite_url)
    proxy = zcnas.get_proxy("gradsign")
    from zcnas.scoring import score_key

    for key, value in run.history[:3]:
        rec = cache.get(score_key(space, proxy, key, tiny_batch, 0))
        assert rec is not None and rec.value == value


def test_trial_values_are_the_choke_point_scores(tiny_batch, space, sqlite_url):
    run = zn.run_strategy(space, "flops", "Random", n_trials=5, batch=tiny_batch, seed=3,
                          storage=sqlite_url)
    for key, value in run.history:
        assert value == zcnas.score(space, "flops", key, tiny_batch, seed=3)
    assert run.best_value == max(v for _, v in run.history)


def test_minimize_proxy_is_negated_for_nni_but_stored_as_is(tiny_batch, space, sqlite_url):
    class SmallIsGood(Proxy):
        name = "neg_params_test"
        direction = "minimize"
        uses_data = False

        def compute(self, model, batch):
            return sum(p.numel() for p in model.parameters()) / 1e6

    run = zn.run_strategy(space, SmallIsGood(), "RegularizedEvolution", n_trials=15,
                          batch=tiny_batch, storage=sqlite_url,
                          strategy_kwargs={"population_size": 5, "sample_size": 2})
    study = load(sqlite_url, run.study_name)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert all(t.value > 0 for t in study.trials)
    assert run.best_value == min(v for _, v in run.history)
    # evolution towards small nets: the children beat the random population on average
    values = [v for _, v in run.history]
    assert sum(values[5:]) / 10 < sum(values[:5]) / 5


def test_failed_scores_are_fail_trials_with_reason(tiny_batch, space, sqlite_url):
    class NanOnNone(Proxy):
        name = "nan_on_none_test"
        uses_data = False

        def compute(self, model, batch):
            first_edge = model.cells[0].edges["edge_0_1"]
            return float("nan") if type(first_edge).__name__ == "Zero" else 1.0

    run = zn.run_strategy(space, NanOnNone(), "Random", n_trials=20, batch=tiny_batch,
                          seed=1, storage=sqlite_url)
    study = load(sqlite_url, run.study_name)
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed and len(failed) == run.n_failed < 20
    for t in failed:
        assert t.params["edge_0_1"] == "none"
        assert "non-finite" in t.user_attrs["fail_reason"]


def test_same_seed_same_search(tiny_batch, space, tmp_path):
    runs = [
        zn.run_strategy(space, "params", "PolicyBasedRL", n_trials=8, batch=tiny_batch, seed=5,
                        storage=f"sqlite:///{tmp_path / f'r{i}.db'}",
                        strategy_kwargs={"samples_per_update": 4})
        for i in range(2)
    ]
    assert runs[0].history == runs[1].history


def test_second_run_appends_and_other_runs_are_refused(tiny_batch, space, sqlite_url):
    kw = dict(n_trials=3, batch=tiny_batch, storage=sqlite_url, study_name="shared")
    zn.run_strategy(space, "params", "Random", seed=0, **kw)
    zn.run_strategy(space, "params", "Random", seed=1, **kw)
    study = load(sqlite_url, "shared")
    assert [t.user_attrs["nni_run"] for t in study.trials] == [1, 1, 1, 2, 2, 2]
    with pytest.raises(ZcnasError, match="already holds another run"):
        zn.run_strategy(space, "params", "TPE", **kw)


def test_benchmark_search_stores_ground_truth(shared_data, space, sqlite_url):
    bench = zcnas.get_benchmark("nb201")
    run = zn.run_strategy(space, None, "RegularizedEvolution", n_trials=30, benchmark=bench,
                          storage=sqlite_url,
                          strategy_kwargs={"population_size": 10, "sample_size": 3})
    study = load(sqlite_url, run.study_name)
    assert study.user_attrs["objective"] == "benchmark:nb201/cifar10/test"
    assert len(study.trials) == 30
    for t in study.trials:
        assert t.value == bench.query(t.user_attrs["arch_key"], dataset="cifar10", metric="test")
        assert t.user_attrs["strategy"] == "RegularizedEvolution" and t.user_attrs["seed"] == 0
        assert t.user_attrs["seconds"] >= 0


def test_assisted_random_prefers_what_the_proxy_likes(shared_data, space, sqlite_url):
    """G-RS with the params proxy evaluates bigger nets than plain random search."""
    bench = zcnas.get_benchmark("nb201")
    batch = zcnas.load_batch("synthetic", 2, 0)
    common = dict(n_trials=12, batch=batch, seed=0, storage=sqlite_url, benchmark=bench)
    plain = zn.run_strategy(space, "params", "Random", **common)
    screened = zn.run_strategy(space, "params", "Random", assisted=True, n_candidates=10,
                               **common)
    assert screened.strategy == "G-Random"
    study = load(sqlite_url, screened.study_name)
    sizes = [t.user_attrs["proxy_score"] for t in study.trials]
    plain_sizes = [zcnas.score(space, "params", k, batch) for k, _ in plain.history]
    assert sum(sizes) / len(sizes) > sum(plain_sizes) / len(plain_sizes)
    # each evaluated arch beat (or tied) the other candidates of its draw: the params proxy's
    # maximum over 10 random NB201 cells is almost always above the median cell's
    median = sorted(plain_sizes)[len(plain_sizes) // 2]
    assert sum(s >= median for s in sizes) >= 10


@pytest.mark.parametrize("strategy", zn.ASSISTED_STRATEGIES)
def test_assisted_variants_run(strategy, shared_data, space, sqlite_url):
    kwargs = {"RegularizedEvolution": {"population_size": 4, "sample_size": 2},
              "PolicyBasedRL": {"samples_per_update": 4}}.get(strategy, {})
    run = zn.run_strategy(space, "params", strategy, n_trials=8,
                          batch=zcnas.load_batch("synthetic", 2, 0),
                          storage=sqlite_url, benchmark="nb201", assisted=True, n_candidates=5,
                          strategy_kwargs=kwargs)
    assert run.n_trials == 8 and run.strategy == f"G-{strategy}"
    assert all(0 < v <= 100 for _, v in run.history)


def test_rl_replay_credits_the_selected_architecture(space):
    from nni.nas.space import SimplifiedModelSpace
    from nni.nas.strategy._rl_impl import TuningTrajectoryGenerator

    from zcnas.search._nni_assisted import _replay

    exec_space = SimplifiedModelSpace.from_model(zn.ZcnasModelSpace(space), None)
    gen = TuningTrajectoryGenerator(exec_space)
    sampled = gen.next_sample()
    chosen = space.mutate(space.as_arch(sampled), np.random.default_rng(0))
    _replay(gen, zn.to_sample(space, chosen))
    buffer = gen.send_reward(1.0)
    ops = list(space.distributions["edge_0_1"].choices)
    assert [int(a) for a in buffer.act] == [ops.index(chosen[n]) for n in space.distributions]
    assert list(buffer.rew) == [0.0] * 5 + [1.0]


def test_reverse_mapping(space):
    for arch in space.sample(5, seed=2):
        sample = zn.to_sample(space, arch)
        assert list(sample) == list(space.distributions)
        assert zn.to_arch(space, sample) == arch
        assert zn.to_key(space, sample) == space.key(arch)
        assert zn.to_arch(space, {f"model/{k}": v for k, v in sample.items()}) == arch
    # NNI's own NAS-Bench-201 space labels edges "cell/j_i" and spells conv_3x3 without "nor_"
    nni_hub = {"cell/0_1": "conv_3x3", "cell/0_2": "conv_3x3", "cell/1_2": "conv_3x3",
               "cell/0_3": "skip_connect", "cell/1_3": "conv_3x3", "cell/2_3": "conv_1x1"}
    assert zn.to_key(space, nni_hub) == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
        "nor_conv_1x1~2|"
    )
    with pytest.raises(InvalidArchError, match="do not match"):
        zn.to_arch(space, {"edge_0_1": "none"})
    with pytest.raises(InvalidArchError):
        zn.to_arch(space, {**zn.to_sample(space, space.arch_at(0)), "edge_0_1": "conv_5x5"})


def test_model_space_is_generated_from_the_distributions(space):
    import nni

    ms = zn.ZcnasModelSpace(space)
    simplified = ms.simplify()
    assert list(simplified) == list(space.distributions)
    for name, mutable in simplified.items():
        assert list(mutable.values) == list(space.distributions[name].choices)
    memo: dict = {}
    net = ms.random(memo=memo, random_state=np.random.RandomState(0))
    reference = space.build(zn.to_arch(space, memo))
    assert type(net) is type(reference)
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in reference.parameters())
    assert isinstance(ms.freeze(memo), type(reference))
    # NNI's own way to instantiate a sampled model gives the zcnas network too
    from nni.nas.space import SimplifiedModelSpace

    wide = SimplifiedModelSpace.from_model(zn.ZcnasModelSpace(space, num_classes=100), None)
    assert wide.freeze(memo).executable_model().classifier.out_features == 100
    assert nni.__version__.startswith("3.")


def test_experiment_dir_runs_a_nas_experiment(tiny_batch, space, sqlite_url, tmp_path):
    run = zn.run_strategy(space, "params", "Random", n_trials=4, batch=tiny_batch,
                          storage=sqlite_url, experiment_dir=tmp_path / "exp")
    assert run.n_trials == 4
    assert len(load(sqlite_url, run.study_name).trials) == 4
    assert list((tmp_path / "exp").glob("*/checkpoint/config.json"))


# --- bad input: one clear error, nothing written ---------------------------------------


@pytest.mark.parametrize("call, message", [
    (dict(strategy="Evolution"), "unknown NNI strategy 'Evolution'; choose one of Random, "),
    (dict(strategy_kwargs={"population_size": -1}), "population_size=-1"),
    (dict(strategy_kwargs={"popsize": 3}), "valid options: population_size, sample_size"),
    (dict(strategy_kwargs={"seed": 3}), "set by zcnas"),
    (dict(strategy="TPE", strategy_kwargs={"optimize_mode": "minimize"}), "set by zcnas"),
    (dict(strategy_kwargs={"n_candidates": 3}), "set by zcnas"),
    (dict(n_trials=0), "n_trials must be at least 1"),
    (dict(assisted=True), "needs both a proxy and a benchmark"),
    (dict(strategy="TPE", assisted=True, benchmark="nb201"), "not for TPE"),
    (dict(benchmark="nb201", dataset="mnist"), "unknown nb201 dataset"),
])
def test_bad_input_is_rejected_before_the_database(call, message, tiny_batch, tmp_path,
                                                   shared_data):
    db = tmp_path / "never.db"
    kwargs = dict(strategy="RegularizedEvolution", n_trials=5, batch=tiny_batch,
                  storage=f"sqlite:///{db}")
    kwargs.update(call)
    strategy = kwargs.pop("strategy")
    with pytest.raises(ZcnasError, match=re.escape(message)):
        zn.run_strategy("nb201", "params", strategy, **kwargs)
    assert not db.exists()


def test_cli_runs_and_reports(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code = cli_main(["nni", "--strategy", "Random", "--proxy", "params", "--n-trials", "4",
                     "--storage", url, "--data", "synthetic", "--batch-size", "4", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_trials"] == 4 and out["strategy"] == "Random"
    assert len(load(url, out["study_name"]).trials) == 4


@pytest.mark.parametrize("argv, message", [
    (["--strategy", "Foo"], "unknown NNI strategy 'Foo'; choose one of Random, GridSearch, "
                            "RegularizedEvolution, PolicyBasedRL, TPE"),
    (["--strategy-kwargs", '{"population_size": -1}'], "population_size=-1"),
    (["--strategy-kwargs", "[1]"], "--strategy-kwargs must be a JSON object"),
    (["--assisted"], "--assisted needs --benchmark"),
])
def test_cli_bad_input_one_line_exit_2(argv, message, tmp_path, capsys):
    db = tmp_path / "never.db"
    code = cli_main(["nni", "--proxy", "params", "--storage", f"sqlite:///{db}", "--data",
                     "synthetic", "--batch-size", "4", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("zcnas: error: ") and message in err[-1]
    assert not db.exists()


# --- nnictl route ----------------------------------------------------------------------


def test_shipped_experiment_config_matches_the_space(space):
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with nni")
    config = yaml.safe_load((ROOT / "studies" / "nni_nb201_gradsign_evolution.yml").read_text())
    assert config["searchSpace"] == zn.search_space_json(space)
    assert "zcnas.cli.nni_trial" in config["trialCommand"]
    assert config["tuner"]["classArgs"]["optimize_mode"] == "maximize"


def test_trial_entry_point_outside_nni(tmp_path, capsys):
    from zcnas.cli import nni_trial

    url = f"sqlite:///{tmp_path / 't.db'}"
    common = ["--proxy", "params", "--study-name", "nnictl-test", "--storage", url,
              "--data", "synthetic", "--batch-size", "4", "--tuner", "Evolution"]
    assert nni_trial.main(common) == 2
    assert "not running under NNI" in capsys.readouterr().err
    key = zcnas.get_space("nb201").key(zcnas.get_space("nb201").arch_at(7))
    assert nni_trial.main([*common, "--arch", key]) == 0
    study = load(url, "nnictl-test")
    (trial,) = study.trials
    assert trial.user_attrs["arch_key"] == key
    assert study.user_attrs["strategy"] == "nnictl:Evolution"
    assert math.isclose(trial.value, zcnas.score("nb201", "params", key,
                                                 zcnas.load_batch("synthetic", 4, 0)))
