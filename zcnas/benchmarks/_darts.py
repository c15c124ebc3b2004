"""Ground truth in the DARTS cell space: Yang et al.'s 214 trained genotypes, the SWAP-NAS
sample of 1000, and the NB-Suite-Zero NB301 subset (surrogate accuracies).

Every table is read from the shared data folder (``$ZCNAS_DATA``, see its README.md for the
provenance of each column) or from ``path=``. The genotype strings are canonicalised with the
benchmark's space, so :meth:`keys` are keys of that space and :meth:`query` accepts any
genotype string of the same cell pair.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._base import DatasetInfo
from zcnas.benchmarks._registry import register_benchmark
from zcnas.data import data_dir
from zcnas.exceptions import DataError
from zcnas.exceptions import InvalidArchError
from zcnas.spaces import DartsSpace
from zcnas.spaces import DartsSwapSpace
from zcnas.spaces import NB301Space


YANG_FILE = "darts/darts_random214_yang2020.csv"
YANG_CURVES_FILE = "darts/darts_random214_yang2020_curves.npz"
SWAP_FILE = "darts/darts_random1000_swap.csv"
NB301_FILE = "nb301/nb301_zc_proxies_naslib_subset.csv"
NB301_RUNS = ("naslib_2022-05-18_725", "naslib_2022-05-14_500")
NB301_PROXIES = ("flops", "params", "epe_nas", "fisher", "grad_norm", "grasp", "jacov", "l2_norm",
                 "nwot", "plain", "snip", "synflow")
Table = dict[str, dict[str, float]]


def _open_csv(path: Path, what: str, needs: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{what} not found at {path}; set ZCNAS_DATA to the shared data folder "
                        f"or pass path=<csv>")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needs if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path} is not a {what}: it has no column(s) {', '.join(missing)}; "
                            f"pass path= to the shared file")
        return list(reader)


_SPACES = {"darts": DartsSpace, "darts_swap": DartsSwapSpace, "nb301": NB301Space}


@lru_cache(maxsize=8)
def _read_genotype_table(path: str, what: str, space_name: str, columns: tuple[str, ...]) -> Table:
    """Canonical key of the space -> {column: value}, in file order."""
    space = _SPACES[space_name]()
    rows = _open_csv(Path(path), what, ("genotype", *columns))
    table: Table = {}
    for i, row in enumerate(rows):
        try:
            key = space.key(space.parse(row["genotype"]))
        except InvalidArchError as exc:
            raise DataError(f"{path} row {i + 1}: {exc}") from None
        if key in table:
            raise DataError(f"{path} lists genotype {key!r} twice; it is not the shared {what}")
        table[key] = {c: float(row[c]) for c in columns}
    return table


class _GenotypeTableBenchmark(Benchmark):
    """A table of genotypes with one row per architecture and one column per metric."""

    default_file: ClassVar[str]
    what: ClassVar[str]
    columns: ClassVar[dict[str, str]]  # metric -> CSV column
    extra_columns: ClassVar[tuple[str, ...]] = ()  # other numeric columns kept in row()

    def __init__(self, *, path: str | None = None) -> None:
        self.path = path

    def _table(self) -> Table:
        path = str(self.path or data_dir() / self.default_file)
        columns = (*self.columns.values(), *self.extra_columns)
        return _read_genotype_table(path, self.what, self.space, columns)

    def canonical(self, key: str) -> str:
        """The space's key of genotype string ``key``; ``DataError`` if it is not one."""
        space = _SPACES[self.space]()
        try:
            return space.key(space.parse(key))
        except InvalidArchError as exc:
            raise DataError(f"{exc} (the {self.name} benchmark's keys are {self.space} space keys)"
                            ) from None

    def row(self, key: str) -> dict[str, float]:
        table = self._table()
        row = table.get(key) or table.get(self.canonical(key))
        if row is None:
            raise DataError(f"genotype {key!r} is not one of the {len(table)} {self.name} "
                            f"architectures; list them with keys()")
        return row

    def query(self, key: str, dataset: str = "cifar10", metric: str | None = None) -> float:
        self.dataset(dataset)
        metric = metric or self.metrics[0]
        if metric not in self.columns:
            raise DataError(f"unknown {self.name} metric {metric!r}; choose "
                            f"{', '.join(self.metrics)}")
        return self.row(key)[self.columns[metric]]

    def keys(self, dataset: str | None = None) -> list[str]:
        if dataset is not None:
            self.dataset(dataset)
        return list(self._table())


@register_benchmark("darts_yang214")
class DartsYang214Benchmark(_GenotypeTableBenchmark):
    """214 random DARTS genotypes, CIFAR-10 accuracy after 600 epochs (Yang et al. 2020).

    Trained with the DARTS 600-epoch protocol (Yang et al., "NAS evaluation is frustratingly
    hard", ICLR 2020; GitHub antoyang/NAS-Benchmark). Accuracy in %.

    Metrics: ``final`` (the accuracy logged at epoch 600), ``max`` (the best of the 600 logged
    epochs: selected on the evaluation split, so optimistic), ``mean_last10`` (the mean of epochs
    591-600). :meth:`curve` gives all 600 epochs. The files do not name the dataset and split;
    the values (96.2-97.6 %) fit the DARTS protocol: C=36, 20 cells, trained on the 50k CIFAR-10
    training images and logged on the 10k test images (quark0/darts ``cnn/train.py``).

    Args:
        path: the CSV (default ``$ZCNAS_DATA/darts/darts_random214_yang2020.csv``).
        curves_path: the npz with ``acc_curves`` (default beside it).
    """

    name: ClassVar[str] = "darts_yang214"
    space: ClassVar[str] = "darts"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = {
        "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 50_000, 10_000,
                               "CIFAR-10, DARTS 600-epoch protocol (C=36, 20 cells; split not "
                               "labelled in the source, by its values the 10k test images)"),
    }
    metrics: ClassVar[tuple[str, ...]] = ("final", "max", "mean_last10")
    default_file = YANG_FILE
    what = "Yang et al. 214-genotype table"
    columns = {"final": "acc_final_ep600", "max": "acc_max_600ep", "mean_last10": "acc_mean_last10"}
    extra_columns = ("row",)

    def __init__(self, *, path: str | None = None, curves_path: str | None = None) -> None:
        super().__init__(path=path)
        self.curves_path = curves_path

    def curve(self, key: str) -> np.ndarray:
        """The 600 per-epoch accuracies (%) of ``key`` (float64, epoch 1 first)."""
        index = int(self.row(key)["row"])
        if self.curves_path:
            path = Path(self.curves_path)
        elif self.path:
            path = Path(self.path).parent / Path(YANG_CURVES_FILE).name
        else:
            path = data_dir() / YANG_CURVES_FILE
        return _read_curves(str(path))[index].astype(np.float64)


@lru_cache(maxsize=4)
def _read_curves(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"Yang et al. curves not found at {p}; set ZCNAS_DATA to the shared data "
                        f"folder or pass curves_path=<npz>")
    with np.load(p) as data:
        if "acc_curves" not in data.files:
            raise DataError(f"{p} has no 'acc_curves' array; pass curves_path= to the shared npz")
        return np.array(data["acc_curves"])


@register_benchmark("darts_swap1000")
class DartsSwap1000Benchmark(_GenotypeTableBenchmark):
    """1000 random DARTS genotypes, CIFAR-10 validation accuracy (SWAP-NAS; recipe unpublished).

    From SWAP-NAS (ICLR 2024; GitHub pym1024/SWAP, ``datasets/DARTS_archs_CIFAR10.csv``), in %.

    Metric ``valid``. The README says the archs were "trained for 200 epochs"; the training
    network, recipe and validation split are **not published** (the accuracies top out at
    86.6 %, so it is not the DARTS evaluation protocol). Its space is ``darts_swap``: 8 ops with
    ``none`` and inputs that may repeat within a node; the normal and reduction cells are equal
    in every row. zcnas builds the DARTS evaluation network for them (C=36, 20 cells). The
    source states no licence.

    Args:
        path: the CSV (default ``$ZCNAS_DATA/darts/darts_random1000_swap.csv``).
    """

    name: ClassVar[str] = "darts_swap1000"
    space: ClassVar[str] = "darts_swap"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = {
        "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 0, 0,
                               "CIFAR-10 validation accuracy, 200 epochs, network and recipe "
                               "unpublished (SWAP-NAS)"),
    }
    metrics: ClassVar[tuple[str, ...]] = ("valid",)
    default_file = SWAP_FILE
    what = "SWAP-NAS 1000-genotype table"
    columns = {"valid": "cifar10_val_acc"}


@lru_cache(maxsize=4)
def _read_nb301(path: str) -> tuple[dict[str, dict[str, list[dict[str, float]]]], tuple[str, ...]]:
    """key -> run -> [row values], and the keys in file order."""
    space = NB301Space()
    rows = _open_csv(Path(path), "NB301 NB-Suite-Zero table",
                     ("run", "genotype", "nbsz_val_accuracy", *NB301_PROXIES))
    table: dict[str, dict[str, list[dict[str, float]]]] = {}
    for i, row in enumerate(rows):
        try:
            key = space.key(space.parse(row["genotype"]))
        except InvalidArchError as exc:
            raise DataError(f"{path} row {i + 1}: {exc}") from None
        values = {c: float(row[c]) for c in ("nbsz_val_accuracy", *NB301_PROXIES) if row[c] != ""}
        table.setdefault(key, {}).setdefault(row["run"], []).append(values)
    return table, tuple(table)


@register_benchmark("nb301")
class NB301Benchmark(Benchmark):
    """NB301 surrogate (not trained) accuracies of 1,218 DARTS genotypes (NB-Suite-Zero subset).

    The 1,218 distinct genotypes of the early NB-Suite-Zero runs (NASLib
    ``naslib/data/zc_nasbench301.json``, 2022-05-14 and -18).

    Metric ``surrogate_valid``: NB301's XGB surrogate prediction of the CIFAR-10 validation
    accuracy (%) after NB301's training protocol (C=32, 8 cells, 100 epochs), queried by NASLib;
    **no network was trained for these values**, and the surrogate's own noise limits any
    correlation measured against them. The space is ``nb301`` (C=32, 8 cells).

    Duplicates: 7 genotypes are in both runs, with different (surrogate-noise) values. By
    default ``query`` and :meth:`reference_scores` average a genotype's rows over the runs
    (``nwot`` exists in the 725-run only); ``run=`` restricts the benchmark to one run's rows.

    :meth:`reference_scores` are NB-Suite-Zero's 12 proxies (``flops`` and ``params`` in M,
    ``jacov`` negative, NASLib signs), computed on NASLib's copy of the network, i.e. the
    ``nb301`` space with ``variant="naslib"`` (same graph, non-affine cell BNs, BN after pooling;
    its parameter counts equal ``params`` exactly).

    Args:
        path: the CSV (default ``$ZCNAS_DATA/nb301/nb301_zc_proxies_naslib_subset.csv``).
        run: one of ``naslib_2022-05-18_725`` / ``naslib_2022-05-14_500``, or None for both.
    """

    name: ClassVar[str] = "nb301"
    space: ClassVar[str] = "nb301"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = {
        "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 0, 0,
                               "CIFAR-10, NB301 XGB surrogate prediction of the validation "
                               "accuracy (no training)"),
    }
    metrics: ClassVar[tuple[str, ...]] = ("surrogate_valid",)

    def __init__(self, *, path: str | None = None, run: str | None = None) -> None:
        if run is not None and run not in NB301_RUNS:
            raise DataError(f"unknown NB301 run {run!r}; choose {', '.join(NB301_RUNS)} or None "
                            f"for both")
        self.path = path
        self.run = run

    def _rows(self) -> tuple[dict[str, dict[str, list[dict[str, float]]]], tuple[str, ...]]:
        return _read_nb301(str(self.path or data_dir() / NB301_FILE))

    def _values(self, key: str) -> list[dict[str, float]] | None:
        runs = self._rows()[0].get(key)
        if runs is None:
            return None
        if self.run is not None:
            return runs.get(self.run)
        return [v for run_rows in runs.values() for v in run_rows]

    def _mean(self, rows: list[dict[str, float]], column: str) -> float | None:
        values = [r[column] for r in rows if column in r]
        return float(np.mean(values)) if values else None

    def query(self, key: str, dataset: str = "cifar10", metric: str = "surrogate_valid") -> float:
        self.dataset(dataset)
        if metric not in self.metrics:
            raise DataError(f"unknown nb301 metric {metric!r}; choose surrogate_valid (NB301 "
                            f"surrogate prediction, the only value this table has)")
        rows = self._values(key)
        if rows is None:
            space = NB301Space()
            try:
                rows = self._values(space.key(space.parse(key)))
            except InvalidArchError as exc:
                raise DataError(f"{exc} (nb301 keys are nb301 space keys)") from None
        if rows is None:
            raise DataError(f"genotype {key!r} is not in the NB301 subset"
                            f"{'' if self.run is None else f' run {self.run}'}; list them with keys()")
        value = self._mean(rows, "nbsz_val_accuracy")
        assert value is not None
        return value

    def keys(self, dataset: str | None = None) -> list[str]:
        if dataset is not None:
            self.dataset(dataset)
        table, order = self._rows()
        return [k for k in order if self.run is None or self.run in table[k]]

    def reference_scores(self, dataset: str) -> dict[str, dict[str, float]]:
        self.dataset(dataset)
        out: dict[str, dict[str, float]] = {}
        for key in self.keys():
            rows = self._values(key) or []
            for proxy in NB301_PROXIES:
                value = self._mean(rows, proxy)
                if value is not None:
                    out.setdefault(proxy, {})[key] = value
        return out
