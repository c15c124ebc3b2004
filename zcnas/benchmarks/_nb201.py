"""NAS-Bench-201 ground truth from a CSV table (the shared table's form) or nats_bench files."""

from __future__ import annotations

import csv
from functools import lru_cache
import gzip
from pathlib import Path
from typing import Any
from typing import ClassVar

from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._base import DatasetInfo
from zcnas.benchmarks._cost import FlopsCostModel
from zcnas.benchmarks._registry import register_benchmark
from zcnas.data import data_dir
from zcnas.exceptions import DataError


TABLE_FILE = "nb201/nb201_tss_accuracies.csv"
TABLE_12EP_FILE = "nb201/nb201_tss_12epoch_accuracies.csv"
HW_FILE = "nb201/nb201_hw_nas_bench.csv.gz"
VALID_FILE = "nb201/nb201_nbsz_val_and_zen.csv"
NBSZ_FILES = {"cifar10": "nb201/nb201_zc_proxies_cifar10.csv",
              "imagenet16": "nb201/nb201_zc_proxies_imagenet16.csv"}
#: HW-NAS-Bench metrics per cell and dataset (latency in ms, energy in mJ; lower is better)
HW_METRICS = ("edgegpu_latency", "edgegpu_energy", "raspi4_latency", "edgetpu_latency",
              "pixel3_latency", "eyeriss_latency", "eyeriss_energy", "fpga_latency",
              "fpga_energy")
NBSZ_PROXIES = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot",
                "params", "plain", "snip", "synflow", "zen")
DATASETS = ("cifar10", "cifar100", "imagenet16")
# NAS-Bench-201's three datasets: classes, resolution, training and test images
NB201_DATASETS = {
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 50_000, 10_000, "CIFAR-10"),
    "cifar100": DatasetInfo("cifar100", 100, (3, 32, 32), 50_000, 5_000, "CIFAR-100"),
    "imagenet16": DatasetInfo("imagenet16", 120, (3, 16, 16), 151_700, 3_000,
                              "ImageNet16-120 (16x16 ImageNet, 120 classes)"),
}


@lru_cache(maxsize=8)
def _read_table(path: str) -> tuple[dict[str, dict[str, str]], tuple[str, ...]]:
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"NB201 table not found at {p}; set ZCNAS_DATA to the shared data folder, or give "
            f"the benchmark a path (zcnas correlate --benchmark-path FILE; benchmark_params = "
            f"{{ path = \"FILE\" }} in a study file; get_benchmark(\"nb201\", path=FILE))"
        )
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "arch" not in reader.fieldnames:
            raise DataError(f"{p} is not an NB201 table: it needs an 'arch' column")
        rows = {row["arch"]: row for row in reader}
        return rows, tuple(reader.fieldnames)


@register_benchmark("nb201")
class NB201Benchmark(Benchmark):
    """NAS-Bench-201 accuracies (%), 200 epochs, from a CSV of the shared table's form.

    ``query(key, dataset, metric)`` reads column ``{dataset}_{metric}``, e.g. ``cifar10_test``;
    ``metric="test_12ep"`` reads the 12-epoch table (low fidelity); ``metric="valid"`` is a
    200-epoch validation accuracy (the high fidelity of a multi-fidelity search, disjoint from
    the test images): CIFAR-10 ``cifar10-valid`` x-valid (NB201 v1.0), CIFAR-100 and
    ImageNet16-120 NAS-Bench-Suite-Zero's val accuracy (x-valid); the HW-NAS-Bench metrics
    (:data:`HW_METRICS`, e.g. ``edgegpu_latency`` in ms, lower is better) read the hardware
    table for the dataset's input size. Any other column of the main table can be named directly
    with ``metric="column:<name>"``. ``reference_scores`` are NAS-Bench-Suite-Zero's precomputed
    proxies (CIFAR-10 and ImageNet16-120, the 9,445 cells without unreachable ops).

    Args:
        path: the CSV (default ``$ZCNAS_DATA/nb201/nb201_tss_accuracies.csv``).
        path_12ep: the 12-epoch CSV (default beside it).
        path_hw: the HW-NAS-Bench CSV (default ``nb201/nb201_hw_nas_bench.csv.gz`` beside it).
    """

    name: ClassVar[str] = "nb201"
    space: ClassVar[str] = "nb201"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = NB201_DATASETS
    metrics: ClassVar[tuple[str, ...]] = ("test", "test_12ep", "valid_12ep", "valid", *HW_METRICS)
    higher_is_better: ClassVar[dict[str, bool]] = {m: False for m in HW_METRICS}

    def __init__(self, *, path: str | None = None, path_12ep: str | None = None,
                 path_hw: str | None = None) -> None:
        self.path = path
        self.path_12ep = path_12ep
        self.path_hw = path_hw

    def _table(self, table: str = "main") -> dict[str, dict[str, str]]:
        if table == "12ep":
            return _read_table(str(self.path_12ep or data_dir() / TABLE_12EP_FILE))[0]
        if table == "hw":
            return _read_table(str(self.path_hw or data_dir() / HW_FILE))[0]
        if table == "valid":
            return _read_table(str(data_dir() / VALID_FILE))[0]
        return _read_table(str(self.path or data_dir() / TABLE_FILE))[0]

    def column(self, dataset: str, metric: str) -> tuple[str, str]:
        """(column name, table) behind ``dataset``/``metric``."""
        if metric.startswith("column:"):
            return metric[7:], "main"
        self.dataset(dataset)  # DataError naming the choices
        if metric == "test":
            return f"{dataset}_test", "main"
        if metric == "valid":
            if dataset == "cifar10":
                return "nb201v1_cifar10valid_xvalid", "main"
            return f"nbsz_{dataset}_val", "valid"
        if metric in ("test_12ep", "valid_12ep"):
            if dataset == "cifar10" and metric == "valid_12ep":
                return "cifar10valid_xvalid_12ep", "12ep"
            return f"{dataset}_{metric}", "12ep"
        if metric in HW_METRICS:
            return f"{dataset}_{metric}", "hw"
        raise DataError(f"unknown NB201 metric {metric!r}; choose {', '.join(self.metrics)}")

    def reference_scores(self, dataset: str) -> dict[str, dict[str, float]]:
        """NAS-Bench-Suite-Zero's precomputed proxies (their names: ``nwot``, ``jacov``, ...)
        on the 9,445 cells without unreachable ops; none for CIFAR-100."""
        if dataset not in NBSZ_FILES:
            return {}
        rows = _read_table(str(data_dir() / NBSZ_FILES[dataset]))[0]
        return {name: {k: float(r[name]) for k, r in rows.items() if r.get(name)}
                for name in NBSZ_PROXIES}

    def query(self, key: str, dataset: str = "cifar10", metric: str = "test") -> float:
        col, which = self.column(dataset, metric)
        table = self._table(which)
        row = table.get(key)
        if row is None:
            raise DataError(f"architecture {key!r} is not in the NB201 table; is it canonical?")
        if col not in row:
            raise DataError(f"the NB201 table has no column {col!r}; columns: {', '.join(row)}")
        if row[col] == "":
            raise DataError(f"{col} has no value for {key!r} (the source leaves it empty); "
                            f"use another metric")
        return float(row[col])

    def keys(self, dataset: str | None = None) -> list[str]:
        """Every key of the table, in file order; with ``dataset``, those with a test value on it."""
        table = self._table()
        if dataset is None:
            return list(table)
        col, _ = self.column(dataset, "test")
        return [key for key, row in table.items() if row.get(col, "") != ""]

    def cost_model(self, space: Any) -> Any:
        """Simulated training seconds linear in FLOPs (:class:`FlopsCostModel`)."""
        return FlopsCostModel(space)

    def index(self, key: str) -> int:
        return int(self._table()[key]["index"])
