"""scripts/label_budgets.py on zcnas correlate folders: several folders merge cell by cell, and
``--evaluate-on`` reports tau on one folder's cells only, the labels drawn from the others."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from zcnas.analysis import sample_keys
from zcnas.benchmarks import get_benchmark
from zcnas.spaces import get_space


def _folder(path: Path, keys: list[str], columns: dict[str, np.ndarray]) -> None:
    path.mkdir()
    with (path / "scores.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "nb201_cifar10_test", *columns])
        for i, k in enumerate(keys):
            w.writerow([k, 0.0, *(v[i] for v in columns.values())])


def test_evaluate_on_holds_one_folders_cells_out(tmp_path: Path, shared_data, load_script) -> None:  # noqa: ANN001
    keys = sample_keys(get_space("nb201"), 140, 3)
    card, extra = keys[:60], keys[60:]
    bench = get_benchmark("nb201")
    rng = np.random.default_rng(0)

    def noisy(ks: list[str]) -> np.ndarray:  # a decent proxy of CIFAR-10 test accuracy
        return np.array([bench.query(k, "cifar10", "test") for k in ks]) + rng.normal(0, 3, len(ks))

    # "meco" is in both folders (merged per cell, never overwritten), "zen" only in the card's
    # an ensemble's column (aznas) and a seed average are outputs, never members
    _folder(tmp_path / "card", card, {"meco": noisy(card), "zen": rng.normal(size=60),
                                      "aznas": rng.normal(size=60),
                                      "meco@3seeds": rng.normal(size=60)})
    _folder(tmp_path / "extra", extra, {"meco": noisy(extra), "aznas": rng.normal(size=80),
                                        "meco@3seeds": rng.normal(size=80)})
    out = tmp_path / "rows.json"
    argv = ["--scores", f"{tmp_path / 'card'},{tmp_path / 'extra'}", "--evaluate-on",
            str(tmp_path / "card"), "--budgets", "20,50,80", "--draws", "2", "--trials", "10",
            "--json", str(out)]
    assert load_script("label_budgets").main(argv) == 0
    rows = json.loads(out.read_text())
    assert {r["dataset"] for r in rows} == {"cifar10", "cifar100", "imagenet16"}
    assert {r["labels"] for r in rows} == {20, 50}  # 80 labels: more than the 80 - 1 allowed
    assert all(r["held_out"] == 60 and r["cells"] == 140 and r["members"] == "meco" for r in rows)
    c10 = [r for r in rows if r["dataset"] == "cifar10"]
    assert all(r["kendall_mean"] > 0.4 for r in c10)  # meco kept on every cell of both
