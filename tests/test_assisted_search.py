"""zcnas's architecture samplers (REA, REINFORCE, GP-BO, online ensemble, FreeREA, RoBoT), the
two-fidelity objective, bulk study storage, and compare cells run in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState
import pytest
import torch

from zcnas.benchmarks import get_benchmark
from zcnas.data import synthetic_batch
from zcnas.exceptions import ZcnasError
from zcnas.search._arch_samplers import RegularizedEvolutionSampler
from zcnas.search._arch_samplers import ReinforceSampler
from zcnas.search._bulk import store_study
from zcnas.search._evolution import FreeREASampler
from zcnas.search._evolution import OnlineEnsembleSampler
from zcnas.search._evolution import max_normalised_sum
from zcnas.search._features import MemberScorer
from zcnas.search._features import MemoScoreCache
from zcnas.search._features import skip_depth
from zcnas.search._multifidelity import MultiFidelityObjective
from zcnas.search._objectives import suggest_arch
from zcnas.search._surrogate import GPSurrogateSampler
from zcnas.search._surrogate import RoBoTSampler
from zcnas.search._surrogate import SmallGP
from zcnas.search.compare import compare
from zcnas.search.compare import load_compare
from zcnas.search.studies import StudyConfigError
from zcnas.spaces import get_space
from zcnas.storage import make_storage


optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = get_space("nb201")
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def _params_objective(trial: optuna.Trial) -> float:
    """Objective = number of parameters of the cell (what the 'params' proxy measures)."""
    arch = suggest_arch(trial, SPACE)
    counts = {"nor_conv_3x3": 9.0, "nor_conv_1x1": 1.0}
    return float(sum(counts.get(v, 0.0) for v in arch.values()))


def _scorer(members: list[str], url: str | None = None) -> MemberScorer:
    cache = MemoScoreCache(url) if url else None
    return MemberScorer(SPACE, members, synthetic_batch(2, seed=0), cache=cache)


def _arch(t: optuna.trial.FrozenTrial) -> dict[str, str]:
    return {n: t.params[n] for n in SPACE.distributions}


# --- REINFORCE -----------------------------------------------------------------------------
def test_reinforce_step_is_nb201s_torch_update() -> None:
    """The numpy update equals AutoDL-Projects' REINFORCE step: softmax policy table, EMA
    baseline updated first, loss -log p(a) * (r - b), torch Adam."""
    sampler = ReinforceSampler(SPACE, learning_rate=0.01, ema_momentum=0.9, seed=3)
    names = list(sampler.choices)
    logits = torch.nn.Parameter(torch.tensor(np.stack([sampler.logits[n] for n in names])))
    opt = torch.optim.Adam([logits], lr=0.01)
    num = den = 0.0
    rng = np.random.default_rng(0)
    for _ in range(6):
        arch = SPACE.random_arch(rng)
        reward = float(rng.uniform(40, 90))
        sampler.update(arch, reward)
        num, den = 0.9 * num + 0.1 * reward, 0.9 * den + 0.1
        action = torch.tensor([sampler.choices[n].index(arch[n]) for n in names])
        logp = torch.distributions.Categorical(logits=logits).log_prob(action)
        loss = (-logp * (reward - num / den)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        mine = np.stack([sampler.logits[n] for n in names])
        np.testing.assert_allclose(mine, logits.detach().numpy(), rtol=1e-6, atol=1e-9)


def test_reinforce_learns_to_prefer_rewarded_operations() -> None:
    study = optuna.create_study(direction="maximize",
                                sampler=ReinforceSampler(SPACE, learning_rate=0.05, seed=0))
    study.optimize(_params_objective, n_trials=150)
    probs = study.sampler.probabilities()  # type: ignore[attr-defined]
    conv3 = [p[study.sampler.choices[n].index("nor_conv_3x3")]  # type: ignore[attr-defined]
             for n, p in probs.items()]
    assert min(conv3) > 0.3  # from 0.2 (uniform) towards the rewarded operation


# --- regularized evolution -------------------------------------------------------------------
def test_rea_children_are_single_mutations_of_the_aging_population() -> None:
    study = optuna.create_study(direction="maximize", sampler=RegularizedEvolutionSampler(
        SPACE, population_size=5, sample_size=2, seed=1))
    study.optimize(_params_objective, n_trials=25)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    for i, t in enumerate(trials[5:], start=5):
        pool = [_arch(p) for p in trials[i - 5:i]]
        diffs = [sum(a[n] != t.params[n] for n in a) for a in pool]
        assert 1 in diffs, f"trial {t.number} is not a mutation of the last 5 trials"


def test_assisted_rea_queries_the_proxy_best_child(sqlite_url: str) -> None:
    scorer = _scorer(["skip"], sqlite_url)  # structural: no network to build
    study = optuna.create_study(direction="maximize", sampler=RegularizedEvolutionSampler(
        SPACE, population_size=4, sample_size=2, scorer=scorer, n_candidates=6, seed=2))
    study.optimize(_params_objective, n_trials=12)
    for t in study.get_trials()[4:]:
        charged = json.loads(t.user_attrs["proxy_charge"])
        assert t.user_attrs["proxy_charge_seconds"] == pytest.approx(sum(s for _, s in charged))
        chosen = scorer.known(SPACE.key(_arch(t)))
        assert chosen is not None
        for key, _ in charged:
            assert chosen[0] >= scorer.known(key)[0]  # type: ignore[index]


# --- GP-BO with proxy features -------------------------------------------------------------
def test_small_gp_switches_off_an_irrelevant_feature_block() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 2))
    y = np.sin(3 * x[:, 0])  # the second column is noise
    gp = SmallGP([slice(0, 1), slice(1, 2)], [[0.3, 1.0], [0.3, 1.0, float("inf")]]).fit(x, y)
    assert gp.lengthscales[1] == float("inf")
    mean, sd = gp.predict(x[:5])
    np.testing.assert_allclose(mean, y[:5], atol=0.05)
    assert (sd < 0.2).all()


def test_gp_sampler_with_proxy_features_never_repeats_and_charges_candidates(
        sqlite_url: str) -> None:
    sampler = GPSurrogateSampler(SPACE, scorer=_scorer(["skip"], sqlite_url), n_startup=4,
                                 n_uniform=6, n_mutations=6, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_params_objective, n_trials=14)
    keys = [SPACE.key(_arch(t)) for t in study.trials]
    assert len(set(keys)) == len(keys)
    after = study.trials[4:]
    assert all(json.loads(t.user_attrs["gp_lengthscales"]) for t in after)
    assert sum(len(json.loads(t.user_attrs["proxy_charge"])) for t in after) >= 6


# --- online ensemble, FreeREA, RoBoT ---------------------------------------------------------
def test_online_ensemble_fit_puts_the_weight_on_the_member_that_ranks_like_the_labels(
        ) -> None:
    sampler = OnlineEnsembleSampler(SPACE, scorer=_scorer(["params", "skip"]), seed=0)
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(30, 2))
    w = sampler.fit(feats, 3 * feats[:, 1] + 1)
    np.testing.assert_allclose(w, [0.0, 1.0])


def test_freerea_combination_and_skip_metric_follow_the_authors_code() -> None:
    values = np.array([[2.0, -4.0], [1.0, 2.0], [np.nan, 1.0]])
    np.testing.assert_allclose(max_normalised_sum(values), [1.0 - 1.0, 0.5 + 0.5, 0.25],
                               atol=1e-8)
    # skips 0->3 (jumps nodes 1 and 2) and 2->3 (jumps none): mean 1
    assert skip_depth(RESNET) == 1.0
    assert skip_depth("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == 0.0
    with pytest.raises(Exception, match="NB201 cell"):
        skip_depth("not-a-cell")


def test_freerea_queries_its_history_best_first(sqlite_url: str) -> None:
    scorer = _scorer(["params", "skip"], sqlite_url)
    sampler = FreeREASampler(SPACE, scorer=scorer, population=6, tournament=3, generations=3,
                             seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_params_objective, n_trials=5)
    queried = [SPACE.key(_arch(t)) for t in study.trials]
    assert queried == sampler.history_keys[:5]
    combined = max_normalised_sum(np.array([scorer.known(k) for k in sampler.history_keys]))
    assert (np.diff(combined) <= 1e-12).all()  # the history is ranked by the combination
    assert len(json.loads(study.trials[0].user_attrs["proxy_charge"])) == len(
        sampler.history_keys)


def test_robot_queries_the_pool_top_then_exploits_the_best_weights(sqlite_url: str) -> None:
    sampler = RoBoTSampler(SPACE, scorer=_scorer(["params", "skip"], sqlite_url), pool=20,
                           n_bo=4, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_params_objective, n_trials=9)
    pool = set(sampler._keys)
    keys = [SPACE.key(_arch(t)) for t in study.trials]
    assert set(keys) <= pool and len(set(keys)) == len(keys)
    assert len(json.loads(study.trials[0].user_attrs["proxy_charge"])) == 20  # pool charged
    phases = [t.user_attrs["robot_phase"] for t in study.trials]
    assert phases[-1] == "exploit" and "bo" in phases
    best_w = np.array(json.loads(study.trials[-1].user_attrs["robot_weights"]))
    order = [sampler._keys[i] for i in sampler.ranking(best_w)]
    exploit = [k for k, p in zip(keys, phases) if p == "exploit"]
    ranked_unqueried = [k for k in order if k not in set(keys) - set(exploit)]
    assert exploit == ranked_unqueried[:len(exploit)]


# --- two fidelities ------------------------------------------------------------------------
def test_multifidelity_trials_are_charged_each_rung_they_reached(shared_data: Path) -> None:
    bench = get_benchmark("nb201")
    objective = MultiFidelityObjective(SPACE, bench, dataset="cifar100")
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=12, reduction_factor=3))
    study.optimize(objective, n_trials=15)
    states = {t.state for t in study.trials}
    assert states == {TrialState.COMPLETE, TrialState.PRUNED}
    cost = objective.cost_model
    for t in study.trials:
        arch = _arch(t)
        low = cost.seconds(arch, "cifar100", "valid_12ep")
        if t.state == TrialState.PRUNED:
            assert t.user_attrs["train_seconds"] == pytest.approx(low)
            assert "report_value" not in t.user_attrs
        else:
            high = cost.seconds(arch, "cifar100", "valid")
            assert t.user_attrs["train_seconds"] == pytest.approx(low + high)
            assert t.value == bench.query(SPACE.key(arch), "cifar100", "valid")
            assert t.user_attrs["queries"] == 2


# --- bulk storage --------------------------------------------------------------------------
def test_store_study_round_trips_every_trial_field(sqlite_url: str) -> None:
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=3.0))
    study.set_user_attr("tag", {"a": 1})

    def objective(trial: optuna.Trial) -> float:
        v = _params_objective(trial)
        trial.set_user_attr("double", 2 * v)
        trial.report(v, 1)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return v

    study.optimize(objective, n_trials=12)
    stored = store_study(study, make_storage(sqlite_url, heartbeat_interval=None), "copy")
    back = optuna.load_study(study_name="copy", storage=sqlite_url)
    assert back.user_attrs == {"tag": {"a": 1}} and stored.study_name == "copy"
    for a, b in zip(study.trials, back.trials):
        assert (a.number, a.state, a.params, a.values, a.user_attrs, a.intermediate_values) == \
            (b.number, b.state, b.params, b.values, b.user_attrs, b.intermediate_values)


# --- compare in memory -----------------------------------------------------------------------
GRID = """
[compare]
name = "mem"
datasets = ["cifar10"]
seeds = 2
budget_queries = 8
budget_seconds = { cifar10 = 500 }
engine = "memory"
proxy_num_classes = 10
algorithms = ["rs", "rea", "online"]
modes = ["vanilla", "p"]
n_candidates = 3
bootstrap = 100

[data]
source = "synthetic"
batch_size = 2

[algorithm.rs]
backend = "optuna"
sampler = "RandomSampler"
proposals = "uniform"
modes = ["vanilla", "p", "warm"]

[algorithm.rea]
backend = "zcnas"
sampler = "RegularizedEvolution"
kwargs = { population_size = 3, sample_size = 2 }
modes = ["vanilla", "native"]

[algorithm.online]
backend = "zcnas"
sampler = "OnlineEnsemble"
kwargs = { n_candidates = 3 }
modes = ["ens"]
baseline = "rs"

[mode.p]
proxy = "params"

[mode.warm]
proxy = "params"
assist = "warmup"
warmup = 12
warmup_top_k = 2

[mode.native]
proxy = "params"
assist = "native"

[mode.ens]
members = ["params", "skip"]
assist = "native"
"""


@pytest.mark.slow
def test_memory_grid_stores_every_cell_charges_proxies_and_reruns_nothing(
        sqlite_url: str, tmp_path: Path, shared_data: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    result = compare(path, storage=sqlite_url, out=tmp_path / "out")
    assert len(result.ran) == 2 * (3 + 2 + 1)
    for name in result.ran:
        study = optuna.load_study(study_name=name, storage=sqlite_url)
        assert len(study.trials) == 8
        assert study.user_attrs["zcnas_compare"]["compare"] == "mem"
    rows = {(r["algorithm"], r["mode"]): r for r in result.summary}
    for key in (("rs", "params-assisted"), ("rs", "params warm-start"),
                ("rea", "params-assisted (native)"), ("online", "params+skip-assisted (native)")):
        assert float(rows[key]["proxy_seconds_mean"]) > 0
    assert float(rows[("rs", "vanilla")]["proxy_seconds_mean"]) == 0
    warm = optuna.load_study(study_name="mem-cifar10-rs-warm-seed0", storage=sqlite_url)
    assert [t.user_attrs.get("warmup_rank") for t in warm.trials[:2]] == [0, 1]
    text = result.files["summary.md"].read_text()
    assert "| cifar10 | online | params+skip-assisted (native) | rs vanilla |" in text
    again = compare(path, storage=sqlite_url, out=tmp_path / "out2")
    assert again.ran == [] and len(again.skipped_done) == 12


def test_compare_file_rules_for_assist_and_backends(tmp_path: Path) -> None:
    bad = {
        "needs a proxy": GRID.replace('modes = ["ens"]', 'modes = ["vanilla"]'),
        "needs a zcnas sampler": GRID.replace('modes = ["vanilla", "p", "warm"]',
                                              'modes = ["vanilla", "native"]'),
        "uses its proxies itself": GRID.replace('modes = ["ens"]', 'modes = ["p"]'),
        "has no argument": GRID.replace("population_size = 3", "populaton_size = 3"),
        "budget_queries maps every dataset": GRID.replace("budget_queries = 8",
                                                          "budget_queries = { cifar100 = 3 }"),
    }
    for message, text in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(StudyConfigError, match=message):
            load_compare(path)


def test_full_study_file_declares_every_family_on_three_datasets_at_nb201s_budget() -> None:
    path = Path(__file__).resolve().parent.parent / "studies" / \
        "assisted_vs_vanilla_nb201_full.toml"
    cfg = load_compare(path)
    assert cfg.datasets == ["cifar10", "cifar100", "imagenet16"] and len(cfg.seeds) >= 10
    assert set(cfg.budget_seconds.values()) == {12000.0}
    labels = {a.label for a in cfg.algorithms}
    assert {"RS", "REA", "REINFORCE", "TPE", "BOHB-like", "GP-BO", "FreeREA", "RoBoT"} <= labels
    for a in cfg.algorithms:
        modes = cfg.modes_of(a)
        assert any(m.assisted for m in modes)
        assert any(not m.assisted for m in modes) or a.baseline is not None


def test_reference_members_read_their_table_free_and_name_a_missing_one() -> None:
    """``reference:<name>`` members (the papers' convention: precomputed scores) give the
    table's value, NaN for a key the table lacks, and are never charged."""
    archs = SPACE.sample(3, seed=0)
    keys = [SPACE.key(a) for a in archs]
    table = {keys[0]: 2.0, keys[1]: -1.0}
    scorer = MemberScorer(SPACE, ["reference:synflow", "skip"], synthetic_batch(2, seed=0),
                          tables={"reference:synflow": table})
    values = scorer.values(archs)
    assert values[0, 0] == 2.0 and values[1, 0] == -1.0 and np.isnan(values[2, 0])
    assert values[:, 1].tolist() == [skip_depth(k) for k in keys]
    assert scorer.charged_seconds == 0.0
    with pytest.raises(ZcnasError, match="needs its table"):
        MemberScorer(SPACE, ["reference:synflow"], synthetic_batch(2, seed=0))
