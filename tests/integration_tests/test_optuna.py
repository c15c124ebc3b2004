"""The Optuna integration: objectives, the proxy-prescreening sampler, warmup, SQL studies."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState
import pytest
from sqlalchemy import inspect as sa_inspect
import torch
from torch import nn

from zcnas import ScoreCache
from zcnas import score
from zcnas.benchmarks import FlopsCostModel
from zcnas.benchmarks import get_benchmark
from zcnas.data import Batch
from zcnas.data import synthetic_batch
from zcnas.exceptions import StorageError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Proxy
from zcnas.proxies import register_proxy
from zcnas.scoring import batch_key
from zcnas.scoring import resolve as get_proxy
from zcnas.search.optuna import BenchmarkObjective
from zcnas.search.optuna import ProxyObjective
from zcnas.search.optuna import ProxyPrescreenSampler
from zcnas.search.optuna import StudyLock
from zcnas.search.optuna import create_study
from zcnas.search.optuna import optimize_exact
from zcnas.search.optuna import trial_counts
from zcnas.search.optuna import warmup
from zcnas.spaces import get_space
from zcnas.storage import get_engine


optuna.logging.set_verbosity(optuna.logging.WARNING)
# a narrow, shallow NB201 network: the same 15,625 cells, built ~6x faster (scores differ from the
# full-size space; each test has its own database, so their cache entries never mix)
SPACE = get_space("nb201", channels=4, cells_per_stage=1)
FULL = get_space("nb201")


@register_proxy("test_nan_on_conv3x3")
class _NanOnConv3x3(Proxy):
    """Test proxy: NaN when any edge is a 3x3 conv, else the parameter count."""

    uses_data = False
    uses_labels = False

    def compute(self, model: nn.Module, batch: Batch) -> float:
        if any(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.in_channels == m.out_channels
               and m.stride == (1, 1) and "edges" in name for name, m in model.named_modules()):
            return float("nan")
        return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.fixture(scope="module")
def batch() -> Batch:
    return synthetic_batch(4, seed=0)


@pytest.fixture()
def cache(sqlite_url: str) -> ScoreCache:
    return ScoreCache(sqlite_url)


def _study(url: str, name: str, directions: list[str], sampler: optuna.samplers.BaseSampler | None = None
           ) -> optuna.Study:
    return create_study(name, storage=url, directions=directions, sampler=sampler)


def test_proxy_objective_values_and_user_attrs(sqlite_url: str, cache: ScoreCache, batch: Batch) -> None:
    torch.set_num_threads(1)
    obj = ProxyObjective(SPACE, "params", batch, seed=3, cache=cache)
    study = _study(sqlite_url, "proxy", obj.directions, optuna.samplers.RandomSampler(seed=0))
    study.optimize(obj, n_trials=3)
    assert obj.directions == ["maximize"]
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        arch = {name: t.params[name] for name in SPACE.distributions}
        a = t.user_attrs
        assert a["arch_key"] == SPACE.key(arch)
        assert t.value == score(SPACE, "params", arch, batch, seed=3)  # same number as the choke point
        assert (a["proxy"], a["proxy_version"], a["proxy_params"], a["seed"]) == ("params", "1", {}, 3)
        assert a["batch_source"] == batch.source and a["device"] == "cpu"
        assert a["zcnas_version"] and a["seconds"] >= 0 and a["batch_id"]
    # the same architecture again is a cache hit, recorded as such, with no compute charged
    study.enqueue_trial(study.trials[0].params)
    study.optimize(obj, n_trials=1)
    again = study.trials[-1]
    assert again.user_attrs["cached"] is True and again.user_attrs["proxy_seconds"] == 0.0
    assert again.value == study.trials[0].value


def test_failed_score_fails_the_trial_not_the_study(sqlite_url: str, cache: ScoreCache,
                                                    batch: Batch) -> None:
    obj = ProxyObjective(SPACE, "test_nan_on_conv3x3", batch, cache=cache)
    study = _study(sqlite_url, "nan", obj.directions)
    bad = {name: "nor_conv_3x3" for name in SPACE.distributions}
    good = {name: "nor_conv_1x1" for name in SPACE.distributions}
    study.enqueue_trial(bad)
    study.enqueue_trial(good)
    study.optimize(obj, n_trials=2)  # must not raise
    t_bad, t_good = study.trials
    assert t_bad.state == TrialState.FAIL
    assert "non-finite" in t_bad.user_attrs["fail_reason"]
    assert t_good.state == TrialState.COMPLETE and "fail_reason" not in t_good.user_attrs


def test_multi_objective_gives_a_pareto_front(sqlite_url: str, cache: ScoreCache, batch: Batch) -> None:
    obj = ProxyObjective(SPACE, "flops", batch, cache=cache, objectives=("proxy", "params"))
    assert obj.directions == ["maximize", "minimize"]
    study = _study(sqlite_url, "mo", obj.directions,
                   optuna.samplers.NSGAIISampler(seed=0, population_size=4))
    study.optimize(obj, n_trials=6)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 6 and all(len(t.values) == 2 for t in done)
    for t in done:
        assert t.values[1] == t.user_attrs["params_value"]
    front = study.best_trials
    assert front
    for f in front:  # nobody dominates a Pareto trial: more proxy and fewer params
        assert not any(t.values[0] >= f.values[0] and t.values[1] <= f.values[1]
                       and t.values != f.values for t in done)


def test_objectives_must_start_with_proxy(batch: Batch) -> None:
    with pytest.raises(ZcnasError, match="must start with 'proxy'"):
        ProxyObjective(SPACE, "params", batch, objectives=("params", "proxy"))


def test_benchmark_objective_separates_search_and_report_metric(shared_data: Path, sqlite_url: str,
                                                               cache: ScoreCache) -> None:
    bench = get_benchmark("nb201")
    obj = BenchmarkObjective(FULL, bench, metric="test", search_metric="valid_12ep", cache=cache)
    study = _study(sqlite_url, "bench", obj.directions, optuna.samplers.RandomSampler(seed=1))
    study.optimize(obj, n_trials=3)
    cost = FlopsCostModel(FULL)
    for t in study.trials:
        a = t.user_attrs
        key = a["arch_key"]
        assert t.value == bench.query(key, "cifar10", "valid_12ep") == a["search_value"]
        assert a["report_value"] == bench.query(key, "cifar10", "test")
        assert (a["search_metric"], a["report_metric"], a["queries"]) == ("valid_12ep", "test", 1)
        assert a["train_seconds"] == pytest.approx(cost.seconds(key, "cifar10", "valid_12ep"))
        assert a["cost_model"] == "nb201-flops-linear/v1"


def test_cost_model_is_calibrated_and_monotone_in_flops(shared_data: Path) -> None:
    cost = FlopsCostModel(FULL)
    idx0 = ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
            "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")
    # calibration point: 7.221 s/epoch on 25k images, 12 epochs + one 25k validation pass
    assert cost.seconds(idx0, "cifar10", "valid_12ep") == pytest.approx(12 * 7.221 + 2.549, rel=1e-6)
    small = {n: "skip_connect" for n in FULL.distributions}
    big = {n: "nor_conv_3x3" for n in FULL.distributions}
    assert cost.seconds(small, "cifar10", "test") < cost.seconds(big, "cifar10", "test")
    assert cost.seconds(big, "cifar10", "valid_12ep") < cost.seconds(big, "cifar10", "test")


class _Spy(optuna.samplers.RandomSampler):
    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.calls = {"before": 0, "after": 0, "reseed": 0, "independent": 0}

    def before_trial(self, study, trial):  # noqa: ANN001, ANN201
        self.calls["before"] += 1
        super().before_trial(study, trial)

    def after_trial(self, study, trial, state, values):  # noqa: ANN001, ANN201
        self.calls["after"] += 1
        super().after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.calls["reseed"] += 1
        super().reseed_rng()

    def sample_independent(self, study, trial, name, dist):  # noqa: ANN001, ANN201
        self.calls["independent"] += 1
        return super().sample_independent(study, trial, name, dist)


def test_prescreen_takes_the_proxy_argmax_of_base_proposals(sqlite_url: str, cache: ScoreCache,
                                                            batch: Batch) -> None:
    spy = _Spy(seed=0)
    sampler = ProxyPrescreenSampler(spy, SPACE, "params", batch, n_candidates=4, cache=cache, seed=0)
    study = _study(sqlite_url, "pre", ["maximize"], sampler)
    obj = ProxyObjective(SPACE, "flops", batch, cache=cache)  # objective differs from the proxy
    study.optimize(obj, n_trials=3)
    assert spy.calls["independent"] == 3 * 4 * len(SPACE.distributions)  # k proposals per trial
    assert spy.calls["before"] == 3 and spy.calls["after"] == 3
    sampler.reseed_rng()
    assert spy.calls["reseed"] == 1
    for t in study.trials:
        a = t.user_attrs
        cands = json.loads(a["prescreen_candidates"])
        assert a["prescreen_n_candidates"] == 4 and a["prescreen_n_unique"] == len(cands)
        scores = {k: s for k, s in cands}
        assert a["arch_key"] in scores
        assert scores[a["arch_key"]] == max(scores.values()) == a["prescreen_score"]
        assert scores[a["arch_key"]] == score(SPACE, "params", t.params, batch)
        assert a["prescreen_proxy_evals"] <= 4 and a["prescreen_proxy_seconds"] >= 0
        assert a["prescreen_random_pick"] is False


@pytest.mark.parametrize("base", [
    lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=2),
    lambda: optuna.samplers.NSGAIISampler(seed=0, population_size=2),
    lambda: optuna.samplers.RandomSampler(seed=0),
])
def test_prescreen_wraps_any_sampler(base, sqlite_url: str, cache: ScoreCache, batch: Batch) -> None:  # noqa: ANN001
    sampler = ProxyPrescreenSampler(base(), SPACE, "params", batch, n_candidates=3, cache=cache, seed=0)
    study = _study(sqlite_url, "any", ["maximize"], sampler)
    study.optimize(ProxyObjective(SPACE, "params", batch, cache=cache), n_trials=5)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5
    assert all(t.value == t.user_attrs["prescreen_score"] for t in study.trials)


def test_prescreen_uniform_proposals_do_not_call_the_base(sqlite_url: str, cache: ScoreCache,
                                                          batch: Batch) -> None:
    spy = _Spy(seed=0)
    sampler = ProxyPrescreenSampler(spy, SPACE, "params", batch, n_candidates=3, cache=cache,
                                    seed=0, proposals="uniform")
    study = _study(sqlite_url, "uni", ["maximize"], sampler)
    study.optimize(ProxyObjective(SPACE, "params", batch, cache=cache), n_trials=2)
    assert spy.calls["independent"] == 0


def test_prescreen_mutation_mode_mutates_a_parent(sqlite_url: str, cache: ScoreCache,
                                                  batch: Batch) -> None:
    sampler = ProxyPrescreenSampler(optuna.samplers.RandomSampler(seed=0), SPACE, "params", batch,
                                    n_candidates=5, mode="mutation", population=3, tournament=2,
                                    cache=cache, seed=0)
    study = _study(sqlite_url, "mut", ["maximize"], sampler)
    study.optimize(ProxyObjective(SPACE, "flops", batch, cache=cache), n_trials=6)
    first, later = study.trials[:3], study.trials[3:]
    assert all(t.user_attrs["prescreen_mode"] == "mutation-startup" for t in first)
    for t in later:
        parent = study.trials[t.user_attrs["prescreen_parent"]]
        assert parent.number < t.number
        diff = [n for n in SPACE.distributions if parent.params[n] != t.params[n]]
        assert len(diff) == 1  # a single-op mutation
        assert t.user_attrs["prescreen_n_candidates"] == 5


def test_prescreen_random_prob_one_ignores_the_proxy(sqlite_url: str, cache: ScoreCache,
                                                     batch: Batch) -> None:
    sampler = ProxyPrescreenSampler(None, SPACE, "params", batch, n_candidates=6, random_prob=1.0,
                                    cache=cache, seed=0)
    study = _study(sqlite_url, "rnd", ["maximize"], sampler)
    study.optimize(ProxyObjective(SPACE, "params", batch, cache=cache), n_trials=4)
    assert all(t.user_attrs["prescreen_random_pick"] for t in study.trials)


def test_bad_prescreen_arguments(batch: Batch) -> None:
    with pytest.raises(ZcnasError, match="mode"):
        ProxyPrescreenSampler(None, SPACE, "params", batch, mode="greedy")  # type: ignore[arg-type]
    with pytest.raises(ZcnasError, match="n_candidates"):
        ProxyPrescreenSampler(None, SPACE, "params", batch, n_candidates=0)


def test_warmup_enqueues_the_proxy_top_k_first(sqlite_url: str, cache: ScoreCache, batch: Batch) -> None:
    study = _study(sqlite_url, "warm", ["maximize"], optuna.samplers.RandomSampler(seed=0))
    res = warmup(study, SPACE, "params", batch, pool=12, top_k=3, seed=0, cache=cache)
    pool = SPACE.sample(12, seed=0)
    scores = sorted((score(SPACE, "params", a, batch) for a in pool), reverse=True)
    assert res.scores == scores[:3] and res.pool == 12 and res.proxy_evals == 12
    study.optimize(ProxyObjective(SPACE, "params", batch, cache=cache), n_trials=4)
    assert [t.user_attrs.get("warmup_rank") for t in study.trials[:3]] == [0, 1, 2]
    assert [t.user_attrs["arch_key"] for t in study.trials[:3]] == res.enqueued
    assert "warmup_rank" not in study.trials[3].user_attrs
    assert study.user_attrs["zcnas_warmup"]["proxy_evals"] == 12


def test_create_study_puts_score_cache_in_the_same_database(sqlite_url: str) -> None:
    create_study("same-db", storage=sqlite_url)
    tables = set(sa_inspect(get_engine(sqlite_url)).get_table_names())
    assert {"studies", "trials", "trial_heartbeats"} <= tables
    assert {"zcnas_scores", "zcnas_runs", "zcnas_alembic_version"} <= tables


def test_existing_study_with_other_direction_is_a_clear_error(sqlite_url: str) -> None:
    create_study("dir", storage=sqlite_url, directions=["maximize"])
    match = r"already exists with direction\(s\) \['maximize'\].*delete-study"
    with pytest.raises(ZcnasError, match=match):
        create_study("dir", storage=sqlite_url, directions=["minimize"])


def test_unreachable_storage_is_a_redacted_one_line_error() -> None:
    url = "postgresql+psycopg2://u:secret@127.0.0.1:1/x"
    with pytest.raises(StorageError) as info:
        create_study("x", storage=url)
    msg = str(info.value)
    assert "secret" not in msg and "\n" not in msg and "127.0.0.1:1" in msg


def test_optimize_exact_tops_up_to_n_trials_and_counts_failures(sqlite_url: str, cache: ScoreCache,
                                                                batch: Batch) -> None:
    obj = ProxyObjective(SPACE, "test_nan_on_conv3x3", batch, cache=cache)
    study = _study(sqlite_url, "exact", obj.directions, optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({name: "nor_conv_3x3" for name in SPACE.distributions})  # will FAIL
    lock = StudyLock(sqlite_url, "exact")
    assert optimize_exact(study, obj, 4, lock=lock) == 4
    assert optimize_exact(study, obj, 4, lock=lock) == 0  # resumable: nothing left
    assert optimize_exact(study, obj, 5, lock=lock) == 1
    counts = trial_counts(study)
    assert counts.finished == 5 == len(study.trials) and counts.failed >= 1


def test_optimize_exact_is_exact_under_contention(sqlite_url: str, cache: ScoreCache, batch: Batch,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Three workers racing for the last trials: counting and asking happen under the lock, so
    a slow count (widened here) cannot let two workers both take the last slot."""
    import threading
    import time

    from zcnas.search import _study as _storage

    real = _storage.trial_counts

    def slow_counts(study: optuna.Study) -> _storage.TrialCounts:
        counts = real(study)
        time.sleep(0.3)
        return counts

    monkeypatch.setattr(_storage, "trial_counts", slow_counts)
    obj = ProxyObjective(SPACE, "params", batch, cache=cache)
    _study(sqlite_url, "race", obj.directions)
    ran: list[int] = []

    def worker() -> None:
        study = optuna.load_study(study_name="race", storage=sqlite_url,
                                  sampler=optuna.samplers.RandomSampler())
        ran.append(optimize_exact(study, obj, 2, lock=StudyLock(sqlite_url, "race")))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(ran) == 2
    assert len(optuna.load_study(study_name="race", storage=sqlite_url).trials) == 2


def test_interrupted_trial_is_retried_by_the_next_run(sqlite_url: str, cache: ScoreCache,
                                                      batch: Batch) -> None:
    inner = ProxyObjective(SPACE, "params", batch, cache=cache)
    calls = {"n": 0}

    def objective(trial: optuna.Trial) -> float:
        calls["n"] += 1
        value = inner(trial)
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the second trial
        return value

    study = _study(sqlite_url, "ctrl-c", inner.directions, optuna.samplers.RandomSampler(seed=0))
    lock = StudyLock(sqlite_url, "ctrl-c")
    with pytest.raises(KeyboardInterrupt):
        optimize_exact(study, objective, 3, lock=lock)
    interrupted = study.trials[1]
    assert interrupted.state == TrialState.FAIL
    assert optimize_exact(study, objective, 3, lock=lock) == 2  # the retry + one new trial
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retry) == 1 and retry[0].params == interrupted.params
    assert retry[0].state == TrialState.COMPLETE
    counts = trial_counts(study)
    assert counts.complete == 3 and counts.finished == 3


def test_user_attrs_written_in_one_transaction_match_optuna(storage_url: str, tmp_path: Path
                                                            ) -> None:
    """``set_trial_user_attrs`` stores exactly what ``set_user_attr`` would, overwrites
    existing keys, and refuses a finished trial like Optuna does."""
    from zcnas.search._study import set_trial_user_attrs

    url = storage_url
    study = create_study(f"attrs-{tmp_path.name}", storage=url, heartbeat_interval=None)
    attrs = {"a": 1, "b": [1.5, None], "c": {"x": "y"}, "d": True}
    trial = study.ask()
    trial.set_user_attr("a", 0)
    set_trial_user_attrs(trial, attrs)
    assert trial.user_attrs == attrs
    study.tell(trial, 1.0)
    reference = study.ask()
    for k, v in attrs.items():
        reference.set_user_attr(k, v)
    study.tell(reference, 1.0)
    stored = {t.number: t.user_attrs for t in study.trials}
    assert stored[trial.number] == stored[reference.number] == attrs
    with pytest.raises(RuntimeError, match="finished"):
        set_trial_user_attrs(trial, {"late": 1})


def test_assisted_search_with_an_ensemble_by_name(sqlite_url: str, cache: ScoreCache,
                                                  batch: Batch) -> None:
    """The prescreen sampler takes the registered ``ensemble`` like any proxy: each query is the
    ensemble argmax of the candidates, and its members come from the score cache."""
    ens = get_proxy("ensemble", members=["params", "synflow"], pool_size=12)
    sampler = ProxyPrescreenSampler(optuna.samplers.RandomSampler(seed=0), SPACE, ens, batch,
                                    n_candidates=3, cache=cache, seed=0)
    study = _study(sqlite_url, "ens", ["maximize"], sampler)
    study.optimize(ProxyObjective(SPACE, "flops", batch, cache=cache), n_trials=3)
    for t in study.trials:
        scores = dict(json.loads(t.user_attrs["prescreen_candidates"]))
        assert scores[t.user_attrs["arch_key"]] == max(scores.values())
        assert scores[t.user_attrs["arch_key"]] == pytest.approx(
            score(SPACE, get_proxy("ensemble", members=["params", "synflow"], pool_size=12),
                  t.params, batch, cache=cache))
    for name in ("params", "synflow"):  # the pool and every candidate, once each, in SQL
        member = get_proxy(name)
        rows = cache.lookup_many(SPACE.cache_name, name, member.version,
                                 json.dumps(member.get_params(), sort_keys=True),
                                 batch_key(member, batch), 0)
        assert len(rows) >= 12 and all(r.ok for r in rows.values())
