"""Members of a label-free ensemble chosen on other spaces: the target's labels never choose."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from zcnas.analysis import SpaceScores
from zcnas.analysis import read_correlate_dir
from zcnas.analysis import select_members
from zcnas.analysis import transfer
from zcnas.exceptions import ZcnasError


def _space(name: str, good: str, n: int = 120, seed: int = 0) -> SpaceScores:
    """Truth = a hidden quality; ``good`` tracks it, the other of "a" / "b" does not, ``anti``
    is its negative with noise (a proxy whose direction is to minimise, stored raw)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=n)
    scores = {"a": rng.normal(size=n), "b": rng.normal(size=n),
              "anti": -q + 0.5 * rng.normal(size=n)}
    scores[good] = q + 0.3 * rng.normal(size=n)
    return SpaceScores(name, {"acc": q}, scores, {"anti": "minimize"})


def test_members_are_chosen_without_the_target() -> None:
    # "a" tracks the truth on the two other spaces, "b" only on the target
    spaces = [_space("x", "a", seed=1), _space("y", "a", seed=2), _space("t", "b", seed=3)]
    for s in spaces:
        del s.scores["anti"]
    rows = {r.space: r for r in transfer(spaces, max_size=1)}
    t = rows["t"]
    assert t.chosen_on == ("x", "y")
    assert t.members == ("a",) and t.single == "a"  # what the others say, not the target
    assert t.best_single == "b" and t.best_single_tau > 0.6  # the oracle sees b
    assert abs(t.ensemble_tau) < 0.25  # "a" is noise on t: the transfer fails, honestly


def test_direction_of_a_minimised_proxy_is_respected() -> None:
    spaces = [_space("x", "a", seed=1), _space("y", "a", seed=2)]
    members, value = select_members(spaces, ["anti", "b"], max_size=1)
    assert members == ("anti",) and value > 0.5  # raw values fall as accuracy rises
    assert spaces[0].tau(("a", "anti"), "acc") > spaces[0].tau(("b",), "acc")
    with pytest.raises(ZcnasError, match="at least one other space"):
        select_members([], ["a"])


def _write(folder: Path, rows: list[dict], summary: list[dict]) -> None:
    folder.mkdir()
    for name, data in (("scores.csv", rows), ("summary.csv", summary)):
        with (folder / name).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(data[0]))
            w.writeheader()
            w.writerows(data)


def test_reads_a_correlate_folder_and_drops_reference_and_mostly_failed(tmp_path: Path) -> None:
    rows = [{"arch": f"c{i}", "nb101_cifar10_valid": 90 + i, "synflow": i, "meco": 2 * i,
             "gradsign": "" if i < 5 else i, "ref:synflow": i} for i in range(8)]
    summary = [{"proxy": p, "dataset": "cifar10"} for p in ("synflow", "meco", "gradsign",
                                                             "ref:synflow")]
    _write(tmp_path / "nb101", rows, summary)
    s = read_correlate_dir(tmp_path / "nb101")
    assert s.name == "nb101" and list(s.truth) == ["cifar10"]
    assert list(s.scores) == ["synflow", "meco"]  # gradsign scored 3 of 8, ref: dropped
    assert s.truth["cifar10"][3] == 93 and s.tau(("synflow", "meco"), "cifar10") == pytest.approx(1)
    with pytest.raises(ZcnasError, match="zcnas correlate"):
        read_correlate_dir(tmp_path / "missing")
