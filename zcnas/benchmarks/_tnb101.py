"""TransNAS-Bench-101 ground truth (micro: 4,096 cells, macro: 3,256 skeletons, 7 tasks each).

Values are TNB101's **final-epoch validation** metrics (``get_single_metric(arch, task, metric,
mode="final")``, as NB-Suite-Zero queried them; NASLib ``naslib/search_spaces/transbench101``),
read from the shared ``tnb101/tnb101_{micro,macro}_val.csv``. The "datasets" are the tasks; each
is one metric, higher is better everywhere (``room_layout`` is a negative L2 loss, ``normal`` and
``autoencoder`` SSIM in 0-1, the others %).

The Taskonomy images are not available: zcnas scores the TNB101 encoder with a linear head on
its CIFAR-10 stand-in at 32x32 (see ``zcnas.spaces._tnb101``). ``DatasetInfo.num_classes`` is the
official head width for the classification tasks (``class_scene`` 47, ``class_object`` 75,
``jigsaw`` 1000 permutations, from yawen-d/TransNASBench ``configs/train_from_scratch``) and 10
(the stand-in's classes) for the regression / dense tasks, whose decoders are not built.
NB-Suite-Zero's proxies used NASLib's heads, which differ: 63 scene and 100 object classes.
"""

from __future__ import annotations

import csv
from functools import lru_cache
import gzip
from pathlib import Path
from typing import ClassVar

from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._base import DatasetInfo
from zcnas.benchmarks._registry import register_benchmark
from zcnas.data import data_dir
from zcnas.exceptions import DataError


TASKS = ("class_scene", "class_object", "jigsaw", "room_layout", "segmentsemantic", "normal",
         "autoencoder")
COLUMNS = {
    "class_scene": "class_scene_valid_top1",
    "class_object": "class_object_valid_top1",
    "jigsaw": "jigsaw_valid_top1",
    "room_layout": "room_layout_valid_neg_loss",
    "segmentsemantic": "segmentsemantic_valid_acc",
    "normal": "normal_valid_ssim",
    "autoencoder": "autoencoder_valid_ssim",
}
_IMAGES = (3, 256, 256)
TNB101_TASKS = {
    "class_scene": DatasetInfo("class_scene", 47, _IMAGES, 0, 0,
                               "Taskonomy scene classification (47 classes), valid top-1 %; "
                               "scored on the CIFAR-10 stand-in"),
    "class_object": DatasetInfo("class_object", 75, _IMAGES, 0, 0,
                                "Taskonomy object classification (75 classes), valid top-1 %; "
                                "scored on the CIFAR-10 stand-in"),
    "jigsaw": DatasetInfo("jigsaw", 1000, (3, 255, 255), 0, 0,
                          "Taskonomy jigsaw (1000 permutations of 9 64x64 tiles, siamese "
                          "encoder), valid top-1 %; scored as a classifier on the CIFAR-10 "
                          "stand-in"),
    "room_layout": DatasetInfo("room_layout", 10, _IMAGES, 0, 0,
                               "Taskonomy room layout regression (9 outputs), minus valid L2 "
                               "loss; encoder scored with a 10-class head on the CIFAR-10 "
                               "stand-in"),
    "segmentsemantic": DatasetInfo("segmentsemantic", 10, _IMAGES, 0, 0,
                                   "Taskonomy semantic segmentation (17 classes), valid pixel "
                                   "accuracy %; encoder scored with a 10-class head on the "
                                   "CIFAR-10 stand-in"),
    "normal": DatasetInfo("normal", 10, _IMAGES, 0, 0,
                          "Taskonomy surface normals, valid SSIM; encoder scored with a 10-class "
                          "head on the CIFAR-10 stand-in"),
    "autoencoder": DatasetInfo("autoencoder", 10, _IMAGES, 0, 0,
                               "Taskonomy autoencoding, valid SSIM; encoder scored with a 10-class "
                               "head on the CIFAR-10 stand-in"),
}
NBSZ_FILE = "tnb101/tnb101_zc_proxies_nbsz.csv.gz"
GRAF_FILE = "tnb101/tnb101_micro_class_scene_zc_proxies_graf.csv"
NBSZ_PROXIES = ("zen", "epe_nas", "synflow", "fisher")
GRAF_PROXIES = ("fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params",
                "plain", "snip", "zen", "epe_nas", "synflow")
_FIX = "set ZCNAS_DATA to the shared data folder or pass {arg}=<file>"


def _rows(path: Path, what: str, needs: tuple[str, ...], arg: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{what} not found at {path}; {_FIX.format(arg=arg)}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in needs if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path} is not the {what}: it has no column(s) {', '.join(missing)}; "
                            f"pass {arg}= to the shared file")
        return list(reader)


@lru_cache(maxsize=4)
def _read_val(path: str, what: str) -> dict[str, dict[str, float]]:
    rows = _rows(Path(path), what, ("arch_str", *COLUMNS.values()), "path")
    return {r["arch_str"]: {t: float(r[c]) for t, c in COLUMNS.items()} for r in rows}


@lru_cache(maxsize=4)
def _read_nbsz(path: str) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """(space, task) -> proxy -> {arch_str: score}."""
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    rows = _rows(Path(path), "TNB101 NB-Suite-Zero proxy table",
                 ("space", "task", "arch_str", *NBSZ_PROXIES), "scores_path")
    for r in rows:
        scores = out.setdefault((r["space"], r["task"]), {})
        for proxy in NBSZ_PROXIES:
            if r[proxy] != "":
                scores.setdefault(proxy, {})[r["arch_str"]] = float(r[proxy])
    return out


@lru_cache(maxsize=4)
def _read_graf(path: str) -> dict[str, dict[str, float]]:
    rows = _rows(Path(path), "TNB101 micro class_scene GRAF proxy table",
                 ("arch_str", *GRAF_PROXIES), "graf_path")
    return {p: {r["arch_str"]: float(r[p]) for r in rows} for p in GRAF_PROXIES}


class _TNB101Benchmark(Benchmark):
    subspace: ClassVar[str]
    default_file: ClassVar[str]
    dataset_info: ClassVar[dict[str, DatasetInfo]] = TNB101_TASKS
    metrics: ClassVar[tuple[str, ...]] = ("valid",)

    def __init__(self, *, path: str | None = None, scores_path: str | None = None) -> None:
        self.path = path
        self.scores_path = scores_path

    def _table(self) -> dict[str, dict[str, float]]:
        return _read_val(str(self.path or data_dir() / self.default_file),
                         f"TNB101 {self.subspace} validation table")

    def query(self, key: str, dataset: str = "class_scene", metric: str = "valid") -> float:
        self.dataset(dataset)
        if metric != "valid":
            raise DataError(f"unknown {self.name} metric {metric!r}; choose valid (TNB101's "
                            f"final-epoch validation value, the only one this table has)")
        row = self._table().get(key)
        if row is None:
            raise DataError(f"architecture {key!r} is not in TNB101 {self.subspace}; keys are "
                            f"official arch strings like {next(iter(self._table()))}")
        return row[dataset]

    def keys(self, dataset: str | None = None) -> list[str]:
        if dataset is not None:
            self.dataset(dataset)
        return list(self._table())

    def reference_scores(self, dataset: str) -> dict[str, dict[str, float]]:
        """NB-Suite-Zero's ``zen``, ``epe_nas``, ``synflow`` and ``fisher`` scores for ``dataset``
        (a proxy is absent where NB-Suite-Zero did not run it on that task)."""
        self.dataset(dataset)
        path = str(self.scores_path or data_dir() / NBSZ_FILE)
        scores = _read_nbsz(path).get((self.subspace, dataset), {})
        return {p: dict(v) for p, v in scores.items()}


@register_benchmark("tnb101_micro")
class TNB101MicroBenchmark(_TNB101Benchmark):
    """TransNAS-Bench-101 micro: 4,096 cells x 7 tasks, final-epoch validation values.

    See the module docstring for what each value is and how zcnas scores it.

    :meth:`reference_scores` adds, for ``class_scene``, the 13 NB-Suite-Zero proxies of GRAF's
    copy of the final ``zc_transbench101_micro.json`` (2,128 cells without unreachable ops). Where
    both sources score a cell, GRAF's final value wins (``zen``, ``epe_nas``, ``synflow`` agree
    exactly; ``fisher`` differs on 26 of 384 cells, the earlier run's values fill the rest).

    Args:
        path: the validation CSV (default ``$ZCNAS_DATA/tnb101/tnb101_micro_val.csv``).
        scores_path: NB-Suite-Zero's proxy table (default
            ``$ZCNAS_DATA/tnb101/tnb101_zc_proxies_nbsz.csv.gz``).
        graf_path: GRAF's class_scene proxy table (default
            ``$ZCNAS_DATA/tnb101/tnb101_micro_class_scene_zc_proxies_graf.csv``).
    """

    name: ClassVar[str] = "tnb101_micro"
    space: ClassVar[str] = "tnb101_micro"
    subspace = "micro"
    default_file = "tnb101/tnb101_micro_val.csv"

    def __init__(self, *, path: str | None = None, scores_path: str | None = None,
                 graf_path: str | None = None) -> None:
        super().__init__(path=path, scores_path=scores_path)
        self.graf_path = graf_path

    def reference_scores(self, dataset: str) -> dict[str, dict[str, float]]:
        out = super().reference_scores(dataset)
        if dataset == "class_scene":
            graf = _read_graf(str(self.graf_path or data_dir() / GRAF_FILE))
            for proxy, scores in graf.items():
                out[proxy] = {**out.get(proxy, {}), **scores}
        return out


@register_benchmark("tnb101_macro")
class TNB101MacroBenchmark(_TNB101Benchmark):
    """TransNAS-Bench-101 macro: 3,256 skeletons x 7 tasks, final-epoch validation values.

    See the module docstring for what each value is and how zcnas scores it.

    Args:
        path: the validation CSV (default ``$ZCNAS_DATA/tnb101/tnb101_macro_val.csv``).
        scores_path: NB-Suite-Zero's proxy table (default
            ``$ZCNAS_DATA/tnb101/tnb101_zc_proxies_nbsz.csv.gz``).
    """

    name: ClassVar[str] = "tnb101_macro"
    space: ClassVar[str] = "tnb101_macro"
    subspace = "macro"
    default_file = "tnb101/tnb101_macro_val.csv"
