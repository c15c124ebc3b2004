"""NATS-Bench size search space (sss) records of the 3 architectures NATS-Bench ships as fixtures.

**A fixture, not a benchmark table.** ``nats_sss/nats_api_fixture_records.csv`` holds the
complete official API records of sss indices 0 (``8:8:8:8:8``), 11 (``8:8:8:16:32``) and 284
(``8:8:40:32:40``) from D-X-Y/NATS-Bench ``fake_torch_dir/NATS-sss-v1_0-50262-simple``: every
setting (``cifar10-valid``, ``cifar10``, ``cifar100``, ``ImageNet16-120``), schedule (1, 12 and
90 epochs; 12 epochs with seeds 777/888/999, the others with 777) and NATS's simulated times.
It checks the ``nats_sss`` space and the query plumbing; three networks cannot rank a proxy.
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
from zcnas.benchmarks._nb201 import NB201_DATASETS
from zcnas.benchmarks._registry import register_benchmark
from zcnas.data import data_dir
from zcnas.exceptions import DataError


FIXTURE_FILE = "nats_sss/nats_api_fixture_records.csv"
# zcnas dataset -> the NATS setting behind its test metric and behind its validation metric
# (CIFAR-10's validation accuracy comes from the cifar10-valid setting, trained on 25k images)
_TEST_SETTING = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
_VALID_SETTING = {"cifar10": "cifar10-valid", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
# metric -> (settings, NATS hp (epochs), eval split per setting)
_TEST_SPLIT = {"cifar10": "ori-test", "cifar100": "x-test", "ImageNet16-120": "x-test"}
_VALID_SPLIT = {"cifar10-valid": "x-valid", "cifar100": "x-valid", "ImageNet16-120": "x-valid"}
_METRICS = {
    "test": (_TEST_SETTING, 90, _TEST_SPLIT),
    "valid": (_VALID_SETTING, 90, _VALID_SPLIT),
    "test_12ep": (_TEST_SETTING, 12, _TEST_SPLIT),
    "valid_12ep": (_VALID_SETTING, 12, _VALID_SPLIT),
    "test_01ep": (_TEST_SETTING, 1, _TEST_SPLIT),
    "valid_01ep": (_VALID_SETTING, 1, _VALID_SPLIT),
}


@dataclass(frozen=True)
class _Records:
    order: list[str]  # arch strings by NATS index
    rows: dict[tuple[str, str, int], dict[int, dict[str, str]]]  # (arch, setting, hp) -> seed -> row


@lru_cache(maxsize=4)
def _load(path: str) -> _Records:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"NATS-Bench fixture records not found at {p}; set ZCNAS_DATA to the shared "
                        f"data folder or pass path=<nats_api_fixture_records.csv>")
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        needed = ("space", "index", "arch_str", "hp_epochs", "dataset", "seed", "train_time_total_s")
        missing = [c for c in needed if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{p} is not a NATS-Bench fixture file: it lacks the columns {missing}")
        rows: dict[tuple[str, str, int], dict[int, dict[str, str]]] = {}
        index: dict[str, int] = {}
        for row in reader:
            if row["space"] != "sss":
                continue
            index[row["arch_str"]] = int(row["index"])
            key = (row["arch_str"], row["dataset"], int(row["hp_epochs"]))
            rows.setdefault(key, {})[int(row["seed"])] = row
    if not index:
        raise DataError(f"{p} has no sss rows; pass the NATS-Bench fixture records file")
    return _Records(sorted(index, key=index.__getitem__), rows)


@register_benchmark("nats_sss")
class NATSSizeBenchmark(Benchmark):
    """Official NATS-Bench sss records (%) of 3 architectures (a fixture; see the module doc).

    Metrics, averaged over the recorded seeds unless ``trial_seed`` picks one (NATS
    ``get_more_info(..., is_random=False)``): ``test`` / ``valid`` after 90 epochs (CIFAR-10:
    ori-test of the ``cifar10`` setting / x-valid of ``cifar10-valid``; CIFAR-100 and
    ImageNet16-120: x-test / x-valid), ``test_12ep`` / ``valid_12ep`` and ``test_01ep`` /
    ``valid_01ep`` for the 12- and 1-epoch schedules.

    Args:
        path: the fixture CSV (default ``$ZCNAS_DATA/nats_sss/nats_api_fixture_records.csv``).
    """

    name: ClassVar[str] = "nats_sss"
    space: ClassVar[str] = "nats_sss"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = NB201_DATASETS
    metrics: ClassVar[tuple[str, ...]] = tuple(_METRICS)

    def __init__(self, *, path: str | None = None) -> None:
        self.path = path

    def _records(self) -> _Records:
        return _load(str(self.path or data_dir() / FIXTURE_FILE))

    def keys(self, dataset: str | None = None) -> list[str]:
        """The 3 channel strings, in NATS index order."""
        if dataset is not None:
            self.dataset(dataset)
        return list(self._records().order)

    def index(self, key: str) -> int:
        """The NATS-Bench sss index of ``key`` (the same as ``NATSSizeSpace.index_of``)."""
        from zcnas.spaces import get_space

        self._runs(key, "cifar10", 90, None)  # DataError for an arch without records
        space = get_space("nats_sss")
        return space.index_of(space.parse(key))

    def _runs(self, key: str, setting: str, hp: int, trial_seed: int | None) -> list[dict[str, str]]:
        records = self._records()
        if key not in records.order:
            raise DataError(f"architecture {key!r} has no NATS-Bench sss fixture record; the "
                            f"fixture holds only {', '.join(records.order)}")
        runs = records.rows.get((key, setting, hp))
        if not runs:
            raise DataError(f"no NATS-Bench sss record of {key!r} for {setting} at {hp} epochs")
        if trial_seed is None:
            return [runs[s] for s in sorted(runs)]
        if int(trial_seed) not in runs:
            raise DataError(f"NATS-Bench sss {key!r} on {setting} at {hp} epochs has the seeds "
                            f"{sorted(runs)}, not {trial_seed}")
        return [runs[int(trial_seed)]]

    def query(self, key: str, dataset: str = "cifar10", metric: str = "test", *,
              trial_seed: int | None = None) -> float:
        """Accuracy (%) of ``key``: the mean over seeds, or the run of ``trial_seed``."""
        self.dataset(dataset)
        if metric not in _METRICS:
            raise DataError(f"unknown NATS sss metric {metric!r}; choose {', '.join(_METRICS)}")
        settings, hp, splits = _METRICS[metric]
        setting = settings[dataset]
        column = f"eval_{splits[setting]}_acc_final"
        values = [r.get(column, "") for r in self._runs(key, setting, hp, trial_seed)]
        if any(v == "" for v in values):
            raise DataError(f"NATS-Bench records no {splits[setting]} accuracy for {key!r} on "
                            f"{setting} at {hp} epochs")
        return fmean(float(v) for v in values)

    def train_seconds(self, key: str, dataset: str = "cifar10", *, hp: int = 12,
                      trial_seed: int | None = None) -> float | None:
        """NATS's simulated training time (s) of the run behind ``valid_12ep`` (``hp=12``),
        ``valid`` (``hp=90``) or ``valid_01ep`` (``hp=1``); mean over seeds."""
        self.dataset(dataset)
        runs = self._runs(key, _VALID_SETTING[dataset], int(hp), trial_seed)
        return fmean(float(r["train_time_total_s"]) for r in runs)

    def params_m(self, key: str, dataset: str = "cifar10") -> float:
        """NATS-Bench's parameter count (M) of ``key`` with the ``dataset`` classifier."""
        self.dataset(dataset)
        return float(self._runs(key, _TEST_SETTING[dataset], 90, None)[0]["params_m"])

    def flops_m(self, key: str, dataset: str = "cifar10") -> float:
        """NATS-Bench's FLOPs (M) of ``key`` on ``dataset``'s input size."""
        self.dataset(dataset)
        return float(self._runs(key, _TEST_SETTING[dataset], 90, None)[0]["flops_m"])
