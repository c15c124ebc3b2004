"""NAS-Bench-201 ground truth from a CSV table (the shared table's form) or nats_bench files."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._base import DatasetInfo
from zcnas.benchmarks._registry import register_benchmark
from zcnas.data import data_dir
from zcnas.exceptions import DataError


TABLE_FILE = "nb201/nb201_tss_accuracies.csv"
TABLE_12EP_FILE = "nb201/nb201_tss_12epoch_accuracies.csv"
DATASETS = ("cifar10", "cifar100", "imagenet16")
# NAS-Bench-201's three datasets: classes, resolution, training and test images
NB201_DATASETS = {
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 50_000, 10_000, "CIFAR-10"),
    "cifar100": DatasetInfo("cifar100", 100, (3, 32, 32), 50_000, 5_000, "CIFAR-100"),
    "imagenet16": DatasetInfo("imagenet16", 120, (3, 16, 16), 151_700, 3_000,
                              "ImageNet16-120 (16x16 ImageNet, 120 classes)"),
}


@lru_cache(maxsize=4)
def _read_table(path: str) -> tuple[dict[str, dict[str, str]], tuple[str, ...]]:
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"NB201 table not found at {p}; set ZCNAS_DATA to the shared data folder or pass "
            f"--benchmark-path <csv with columns arch,cifar10_test,...>"
        )
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "arch" not in reader.fieldnames:
            raise DataError(f"{p} is not an NB201 table: it needs an 'arch' column")
        rows = {row["arch"]: row for row in reader}
        return rows, tuple(reader.fieldnames)


@register_benchmark("nb201")
class NB201Benchmark(Benchmark):
    """NAS-Bench-201 accuracies (%), 200 epochs, from a CSV of the shared table's form.

    ``query(key, dataset, metric)`` reads column ``{dataset}_{metric}``, e.g. ``cifar10_test``;
    ``metric="test_12ep"`` reads the 12-epoch table (low fidelity). Any other column of the table
    can be named directly with ``metric="column:<name>"``.

    Args:
        path: the CSV (default ``$ZCNAS_DATA/nb201/nb201_tss_accuracies.csv``).
        path_12ep: the 12-epoch CSV (default beside it).
    """

    name: ClassVar[str] = "nb201"
    space: ClassVar[str] = "nb201"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = NB201_DATASETS
    metrics: ClassVar[tuple[str, ...]] = ("test", "test_12ep", "valid_12ep")

    def __init__(self, *, path: str | None = None, path_12ep: str | None = None) -> None:
        self.path = path
        self.path_12ep = path_12ep

    def _table(self, low_fidelity: bool = False) -> dict[str, dict[str, str]]:
        if low_fidelity:
            return _read_table(str(self.path_12ep or data_dir() / TABLE_12EP_FILE))[0]
        return _read_table(str(self.path or data_dir() / TABLE_FILE))[0]

    def column(self, dataset: str, metric: str) -> tuple[str, bool]:
        if metric.startswith("column:"):
            return metric[7:], False
        if dataset not in DATASETS:
            raise DataError(f"unknown NB201 dataset {dataset!r}; choose {', '.join(DATASETS)}")
        if metric == "test":
            return f"{dataset}_test", False
        if metric in ("test_12ep", "valid_12ep"):
            if dataset == "cifar10" and metric == "valid_12ep":
                return "cifar10valid_xvalid_12ep", True
            return f"{dataset}_{metric}", True
        raise DataError(f"unknown NB201 metric {metric!r}; choose {', '.join(self.metrics)}")

    def query(self, key: str, dataset: str = "cifar10", metric: str = "test") -> float:
        col, low = self.column(dataset, metric)
        table = self._table(low)
        row = table.get(key)
        if row is None:
            raise DataError(f"architecture {key!r} is not in the NB201 table; is it canonical?")
        if col not in row:
            raise DataError(f"the NB201 table has no column {col!r}; columns: {', '.join(row)}")
        return float(row[col])

    def keys(self, dataset: str | None = None) -> list[str]:
        """Every key of the table, in file order; with ``dataset``, those with a test value on it."""
        table = self._table()
        if dataset is None:
            return list(table)
        col, _ = self.column(dataset, "test")
        return [key for key, row in table.items() if row.get(col, "") != ""]

    def index(self, key: str) -> int:
        return int(self._table()[key]["index"])
