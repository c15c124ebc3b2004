"""NAS-Bench-101 ground truth from the two shared CSVs (no official ``.tfrecord`` is needed).

* ``nb101/nb101_zc_proxies_naslib_subset.csv``: NAS-Bench-Suite-Zero's early NB101 subset, 500
  rows = 292 distinct cells, each row with the 108-epoch validation accuracy of **one** NB101
  training repeat (NASLib queried a random repeat) and 11 precomputed proxies.
* ``nb101/nb101_api_fixture_records.csv``: 30 official NB101 records (NASLib's test fixture),
  all 3 repeats with halfway/final train/validation/test accuracy and training time.

Together 321 cells (one is in both files) have a validation accuracy; only the 30 fixture cells
have test accuracies and training times. This is a small ground truth for tests and smoke runs,
not the 423,624-cell benchmark.

Aggregation: a fixture cell's value is the mean of its 3 repeats (NB101's usual "mean
accuracy"), or one repeat with ``repeat=``. Subset rows of the same hash are NASLib drawing a
repeat again; rows with equal accuracies are the same repeat drawn twice, so a subset cell's
validation accuracy is the mean of its *distinct* values (1 to 3 repeats). A cell in both files
takes the fixture's 3-repeat mean. Reference proxy scores are the mean over a hash's rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from statistics import fmean
from typing import ClassVar

from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._base import DatasetInfo
from zcnas.benchmarks._registry import register_benchmark
from zcnas.data import data_dir
from zcnas.exceptions import DataError
from zcnas.exceptions import InvalidArchError
from zcnas.spaces import nb101_module_hash as module_hash
from zcnas.spaces import nb101_parse_spec as parse_spec
from zcnas.spaces import nb101_prune as prune
from zcnas.spaces import nb101_remember_specs as remember_specs
from zcnas.spaces import nb101_spec_string as spec_string


SUBSET_FILE = "nb101/nb101_zc_proxies_naslib_subset.csv"
FIXTURE_FILE = "nb101/nb101_api_fixture_records.csv"
# NAS-Bench-101 trains on 40k CIFAR-10 images and scores 10k validation and 10k test images
NB101_DATASETS = {
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 40_000, 10_000,
                           "CIFAR-10 (NAS-Bench-101 split: 40k train, 10k validation, 10k test)"),
}
# metric -> column of the fixture records (the subset has "valid" only)
METRICS = {
    "valid": "final_validation_accuracy",
    "test": "final_test_accuracy",
    "valid_halfway": "halfway_validation_accuracy",
    "test_halfway": "halfway_test_accuracy",
}
REFERENCE_PROXIES = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm",
                     "params", "plain", "snip", "synflow")


@dataclass(frozen=True)
class _Tables:
    specs: dict[str, str]  # hash -> pruned spec string as the file stores it
    valid: dict[str, float]  # hash -> aggregated validation accuracy (subset and fixture)
    repeats: dict[str, list[dict[str, float]]]  # fixture hash -> its repeats, in repeat order
    params: dict[str, int]  # fixture hash -> NB101 trainable_parameters
    reference: dict[str, dict[str, float]]  # proxy -> hash -> mean score


def _rows(path: Path, what: str, arg: str, needed: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"NB101 {what} not found at {path}; set ZCNAS_DATA to the shared data "
                        f"folder or pass get_benchmark('nb101', {arg}=<csv>)")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path} is not an NB101 {what}: it lacks the columns {missing}")
        return list(reader)


def _cell_spec(row: dict[str, str], path: Path, line: int) -> str:
    """The row's spec string, after checking that its cell hashes to its ``nb101_hash``."""
    spec = f"matrix={row['pruned_adjacency']};ops={row['pruned_ops']}"
    try:
        pruned = prune(*parse_spec(spec))
    except InvalidArchError as exc:
        raise DataError(f"{path} line {line}: {exc}") from None
    if pruned is None or module_hash(*pruned) != row["nb101_hash"]:
        raise DataError(f"{path} line {line}: nb101_hash {row['nb101_hash']} is not the hash of "
                        f"its cell; the file is corrupt, restore it from the shared data")
    return spec_string(*pruned)


@lru_cache(maxsize=4)
def _load(subset_path: str, fixture_path: str) -> _Tables:
    cell_cols = ("nb101_hash", "pruned_adjacency", "pruned_ops")
    fixture = _rows(Path(fixture_path), "fixture records", "fixture_path",
                    (*cell_cols, "repeat", "trainable_parameters", "final_training_time_s",
                     "halfway_training_time_s", *METRICS.values()))
    subset = _rows(Path(subset_path), "NB-Suite-Zero subset", "path",
                   (*cell_cols, "nbsz_val_accuracy", *REFERENCE_PROXIES))
    specs: dict[str, str] = {}
    repeats: dict[str, list[dict[str, float]]] = {}
    params: dict[str, int] = {}
    for line, row in enumerate(fixture, start=2):
        h = row["nb101_hash"]
        specs.setdefault(h, _cell_spec(row, Path(fixture_path), line))
        params[h] = int(row["trainable_parameters"])
        record = {m: float(row[col]) for m, col in METRICS.items()}
        record["train_seconds"] = float(row["final_training_time_s"])
        record["train_seconds_halfway"] = float(row["halfway_training_time_s"])
        record["repeat"] = int(row["repeat"])
        repeats.setdefault(h, []).append(record)
    for runs in repeats.values():
        runs.sort(key=lambda r: r["repeat"])
    values: dict[str, set[float]] = {}
    scores: dict[str, dict[str, list[float]]] = {p: {} for p in REFERENCE_PROXIES}
    for line, row in enumerate(subset, start=2):
        h = row["nb101_hash"]
        specs.setdefault(h, _cell_spec(row, Path(subset_path), line))
        values.setdefault(h, set()).add(float(row["nbsz_val_accuracy"]))
        for p in REFERENCE_PROXIES:
            scores[p].setdefault(h, []).append(float(row[p]))
    valid = {h: fmean(sorted(v)) for h, v in values.items()}
    valid.update({h: fmean(r["valid"] for r in runs) for h, runs in repeats.items()})
    reference = {p: {h: fmean(v) for h, v in by_hash.items()} for p, by_hash in scores.items()}
    remember_specs(specs)
    return _Tables(specs, valid, repeats, params, reference)


@register_benchmark("nb101")
class NB101Benchmark(Benchmark):
    """NAS-Bench-101 CIFAR-10 accuracies (%) after 108 epochs, keyed by NB101 module hash.

    Metrics: ``valid`` (all 321 cells), ``test``, ``valid_halfway``, ``test_halfway`` (the 30
    fixture cells only). See the module docstring for how repeats are aggregated.

    Args:
        path: the NB-Suite-Zero subset CSV (default ``$ZCNAS_DATA/nb101/...naslib_subset.csv``).
        fixture_path: the official fixture records CSV (default beside it).
    """

    name: ClassVar[str] = "nb101"
    space: ClassVar[str] = "nb101"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = NB101_DATASETS
    metrics: ClassVar[tuple[str, ...]] = tuple(METRICS)

    def __init__(self, *, path: str | None = None, fixture_path: str | None = None) -> None:
        self.path = path
        self.fixture_path = fixture_path

    def _tables(self) -> _Tables:
        return _load(str(self.path or data_dir() / SUBSET_FILE),
                     str(self.fixture_path or data_dir() / FIXTURE_FILE))

    def _known(self, key: str) -> None:
        if key not in self._tables().specs:
            raise DataError(f"architecture {key!r} is not in the nb101 tables "
                            f"({len(self._tables().specs)} cells); give the NB101 module hash "
                            f"of one of them (NB101Space.key, or nb101 benchmark keys())")

    def keys(self, dataset: str | None = None, metric: str = "valid") -> list[str]:
        """The hashes with a ``metric`` value, sorted."""
        if dataset is not None:
            self.dataset(dataset)
        if metric not in METRICS:
            raise DataError(f"unknown NB101 metric {metric!r}; choose {', '.join(METRICS)}")
        t = self._tables()
        return sorted(t.valid if metric == "valid" else t.repeats)

    def query(self, key: str, dataset: str = "cifar10", metric: str = "valid", *,
              repeat: int | None = None) -> float:
        """Accuracy (%) of cell ``key``: the repeat mean, or NB101 repeat ``repeat`` (0-2,
        fixture cells only)."""
        self.dataset(dataset)
        if metric not in METRICS:
            raise DataError(f"unknown NB101 metric {metric!r}; choose {', '.join(METRICS)}")
        self._known(key)
        t = self._tables()
        if key in t.repeats:
            runs = t.repeats[key]
            if repeat is None:
                return fmean(r[metric] for r in runs)
            if not 0 <= repeat < len(runs):
                raise DataError(f"NB101 cell {key} has repeats 0..{len(runs) - 1}, not {repeat}")
            return runs[repeat][metric]
        if metric != "valid":
            raise DataError(f"NB101 cell {key} has only a validation accuracy here (NB-Suite-Zero "
                            f"subset); use metric='valid' or a fixture cell")
        if repeat is not None:
            raise DataError(f"the NB-Suite-Zero subset does not say which repeat its rows are; "
                            f"query NB101 cell {key} without repeat=")
        return t.valid[key]

    def train_seconds(self, key: str, dataset: str = "cifar10", *,
                      halfway: bool = False) -> float | None:
        """NB101's logged TPU training time (s, mean of the 3 repeats) of a fixture cell, to
        108 epochs (``halfway``: to 54); None for the subset cells, which have no times."""
        self.dataset(dataset)
        self._known(key)
        runs = self._tables().repeats.get(key)
        if runs is None:
            return None
        return fmean(r["train_seconds_halfway" if halfway else "train_seconds"] for r in runs)

    def trainable_parameters(self, key: str) -> int | None:
        """NB101's ``trainable_parameters`` of a fixture cell (None for subset cells)."""
        self._known(key)
        return self._tables().params.get(key)

    def encoding(self, key: str) -> str:
        """The cell's spec string ``matrix=...;ops=...`` (what ``NB101Space.parse`` reads)."""
        self._known(key)
        return self._tables().specs[key]

    def reference_scores(self, dataset: str) -> dict[str, dict[str, float]]:
        """NB-Suite-Zero's proxies (its names: ``epe_nas, fisher, flops, grad_norm, grasp,
        jacov, l2_norm, params, plain, snip, synflow``) for the 292 subset cells, mean over a
        hash's rows. ``params``/``flops`` were measured on NASLib's unpruned model."""
        self.dataset(dataset)
        return {p: dict(v) for p, v in self._tables().reference.items()}
