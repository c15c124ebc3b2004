"""The evaluation card's metrics against direct computations, the consensus selection rule and
the label-budget protocol (on synthetic rankings where the right answer is known)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from zcnas.analysis import card_row
from zcnas.analysis import ndcg_at
from zcnas.analysis import partial_tau
from zcnas.analysis import regret_at
from zcnas.ensembles import consensus_selection
from zcnas.ensembles import label_budget
from zcnas.ensembles import rank_features


def test_regret_and_ndcg_by_hand() -> None:
    y = np.array([90.0, 94.0, 80.0, 93.0])
    x = np.array([0.1, 0.2, 0.9, 0.3])  # ranks 80 first, then 93, then 94
    assert regret_at(x, y, 1) == pytest.approx(14.0)
    assert regret_at(x, y, 3) == 0.0
    gain = (y - 80) / 14
    order = [2, 3, 1, 0]
    dcg = sum(gain[i] / math.log2(r + 2) for r, i in enumerate(order[:2]))
    ideal = sum(g / math.log2(r + 2) for r, g in enumerate(sorted(gain, reverse=True)[:2]))
    assert ndcg_at(x, y, 2) == pytest.approx(dcg / ideal)
    assert ndcg_at(y, y, 4) == pytest.approx(1.0)


def test_partial_tau_removes_a_shared_size_effect() -> None:
    rng = np.random.default_rng(0)
    size = rng.normal(size=400)
    acc = size + 0.2 * rng.normal(size=400)
    counter = size + 0.2 * rng.normal(size=400)          # only counts size
    informed = acc + 0.2 * rng.normal(size=400)           # knows the residual too
    plain = stats.kendalltau(counter, acc).statistic
    assert plain > 0.5
    # Kendall's partial tau shrinks a pure size counter (not to 0: it is not a conditional
    # independence test) and keeps what a method knows beyond size
    assert partial_tau(counter, acc, [size]) < 0.5 * plain
    assert partial_tau(informed, acc, [size]) > partial_tau(counter, acc, [size]) + 0.25


def test_partial_tau_with_one_control_is_the_textbook_formula() -> None:
    rng = np.random.default_rng(1)
    x, y, z = rng.normal(size=(3, 200))
    t = {(a, b): stats.kendalltau(u, v).statistic
         for (a, u), (b, v) in itertools.combinations({"x": x, "y": y, "z": z}.items(), 2)}
    expected = (t["x", "y"] - t["x", "z"] * t["y", "z"]) / math.sqrt(
        (1 - t["x", "z"] ** 2) * (1 - t["y", "z"] ** 2))
    assert partial_tau(x, y, [z]) == pytest.approx(expected)


def test_partial_tau_of_a_control_is_nan_never_above_one() -> None:
    """FLOPs given params and FLOPs (TNB101 macro, where the two rank cells differently): the
    second step divides by a rounding error unless it is recognised."""
    rng = np.random.default_rng(8)
    params = rng.integers(0, 80, size=100).astype(float)  # ties: tau-b of a variable with
    flops = np.round(params + rng.normal(scale=30, size=100))  # itself is 1 - 2e-16
    acc = flops + rng.normal(scale=30, size=100)
    assert math.isnan(partial_tau(flops, acc, [params, flops]))
    assert abs(partial_tau(acc + rng.normal(size=100), acc, [params, flops])) <= 1.0


def test_card_row_orients_minimised_methods_and_brackets_values() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=300)
    row = card_row("m", "d", -y + 0.3 * rng.normal(size=300), y, direction="minimize",
                   n_bootstrap=50)
    assert row.values["kendall"] > 0.6 and row.n == 300
    for name, (lo, hi) in row.intervals.items():
        assert lo <= row.values[name] + 1e-9 and row.values[name] <= hi + 1e-9, name


def test_consensus_keeps_the_agreeing_members_and_drops_noise() -> None:
    rng = np.random.default_rng(3)
    signal = rng.normal(size=500)
    good = np.stack([signal + 0.5 * rng.normal(size=500) for _ in range(4)], axis=1)
    noise = rng.normal(size=(500, 4))
    weights, agreement = consensus_selection(np.concatenate([good, noise], axis=1), keep=0.5)
    assert list(weights) == [1, 1, 1, 1, 0, 0, 0, 0]
    assert agreement[:4].min() > agreement[4:].max()


def test_label_budget_improves_with_labels_and_never_trains_on_test() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=600)
    members = np.stack([y + rng.normal(size=600), rng.normal(size=600),
                        -y + rng.normal(size=600)], axis=1)  # one member is reversed
    feats = rank_features(members)
    rows = label_budget(feats, y, [20, 200], draws=3, n_trials=60)
    assert rows[0]["held_out"] == 580 and rows[1]["held_out"] == 400
    assert rows[1]["kendall_mean"] > rows[1]["label_free_sum_kendall"]
    assert rows[1]["kendall_mean"] > 0.3
