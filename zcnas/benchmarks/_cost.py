"""Simulated training cost of a benchmark query (NAS-Bench-201 ships no training times).

The shared NB201 data has accuracies but no ``train-all-time``. :class:`FlopsCostModel` charges
each query a simulated GPU training time that is linear in the architecture's FLOPs, calibrated
on two NB201 per-epoch training times (``cifar10-valid``, 25k training images, ``hp="200"``) as
printed by the NB201 API's ``get_more_info`` in public usage examples:

* ``|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|``
  (index 0): 7.221 s/epoch training, 2.549 s per pass over the 25k validation images;
* ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``:
  10.848 s/epoch.

Per training image: ``c(F) = (a + b * F) / 25000`` seconds, with F the MFLOPs at the dataset's
resolution (our ``flops`` proxy) and a, b solved from the two points (a ~ 6.6 s, b ~ 0.037 s/MFLOP
at 32x32). One evaluation image costs ``2.549 / 7.221`` of a training image. A query of metric
``m`` on ``dataset`` costs ``epochs(m) * n_train(dataset, m) * c(F) + n_eval * 0.353 * c(F)``:
the training run that produced that number plus one evaluation pass, as NB201's own search
scripts charge (train time + one validation pass). 12-epoch metrics cost 12 epochs, 200-epoch
ones 200. This is an approximation (two calibration points, one GPU type); it is versioned
(``version``) and every trial records it, so numbers are never mixed silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from zcnas.data import synthetic_batch
from zcnas.exceptions import DataError
from zcnas.proxies import get_proxy
from zcnas.spaces import SearchSpace


CALIBRATION: tuple[tuple[str, float], ...] = (
    ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     7.221),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     10.848),
)
CALIBRATION_IMAGES = 25_000
EVAL_TO_TRAIN = 2.549 / 7.221


@dataclass(frozen=True)
class Fidelity:
    """How a benchmark number was produced: epochs, training images, evaluated images, resolution."""

    epochs: int
    n_train: int
    n_eval: int
    image_size: int = 32
    num_classes: int = 10


# dataset: (train images, test images, resolution, classes, train and eval images of the
# validation setting: cifar10-valid trains on 25k and validates on the other 25k)
_DATASETS = {
    "cifar10": (50_000, 10_000, 32, 10, 25_000, 25_000),
    "cifar100": (50_000, 5_000, 32, 100, 50_000, 5_000),
    "imagenet16": (151_700, 3_000, 16, 120, 151_700, 3_000),
}


def nb201_fidelity(dataset: str, metric: str) -> Fidelity:
    """The training run behind an NB201 metric (``test``, ``test_12ep``, ``valid_12ep``, ...)."""
    if dataset not in _DATASETS:
        raise DataError(f"no NB201 training cost for dataset {dataset!r}; choose "
                        f"{', '.join(_DATASETS)}")
    n_train, n_eval, size, classes, n_train_valid, n_eval_valid = _DATASETS[dataset]
    epochs = 12 if metric.endswith("_12ep") else 200
    if metric.startswith("valid"):
        n_train, n_eval = n_train_valid, n_eval_valid
    return Fidelity(epochs, n_train, n_eval, size, classes)


class FlopsCostModel:
    """Simulated training seconds of a benchmark query, linear in FLOPs (see module docstring).

    Args:
        space: the search space (FLOPs come from building its networks once per architecture;
            they are kept in memory, and are the ``flops`` proxy's values).
    """

    name = "nb201-flops-linear"
    version = "1"

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self._flops: dict[tuple[str, int, int], float] = {}
        self._coef: dict[tuple[int, int], tuple[float, float]] = {}

    def mflops(self, arch: Mapping[str, Any] | str, image_size: int = 32,
               num_classes: int = 10) -> float:
        """MFLOPs of one forward pass of one image (cached)."""
        arch = self.space.as_arch(arch)
        k = (self.space.key(arch), image_size, num_classes)
        if k not in self._flops:
            batch = synthetic_batch(1, seed=0, num_classes=num_classes, image_size=image_size)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = self.space.build(arch, num_classes=num_classes)
                self._flops[k] = float(get_proxy("flops").compute(model, batch))
        return self._flops[k]

    def preload(self, table: Mapping[str, float], image_size: int = 32,
                num_classes: int = 10) -> None:
        """Known MFLOPs by architecture key (e.g. cached ``flops`` scores), so :meth:`mflops`
        does not build those networks again."""
        for key, value in table.items():
            self._flops[(key, image_size, num_classes)] = float(value)

    def coefficients(self, image_size: int = 32, num_classes: int = 10) -> tuple[float, float]:
        """(a, b): seconds per epoch of 25k images = a + b * MFLOPs (calibrated at 32x32)."""
        key = (image_size, num_classes)
        if key not in self._coef:
            (k1, s1), (k2, s2) = CALIBRATION
            f1, f2 = self.mflops(k1), self.mflops(k2)
            b = (s2 - s1) / (f2 - f1)
            self._coef[key] = (s1 - b * f1, b)
        return self._coef[key]

    def seconds(self, arch: Mapping[str, Any] | str, dataset: str = "cifar10",
                metric: str = "test") -> float:
        """Simulated seconds to obtain ``metric`` on ``dataset`` for ``arch``."""
        fid = nb201_fidelity(dataset, metric)
        a, b = self.coefficients()
        per_image = (a + b * self.mflops(arch, fid.image_size, fid.num_classes)) / CALIBRATION_IMAGES
        return fid.epochs * fid.n_train * per_image + fid.n_eval * EVAL_TO_TRAIN * per_image
