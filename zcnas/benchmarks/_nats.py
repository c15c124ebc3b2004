"""NATS-Bench topology search space (tss) ground truth through the official ``nats_bench`` API.

The benchmark files are never downloaded: pass ``path=`` (or set ``ZCNAS_NATS_PATH``) to the
fast-mode folder ``NATS-tss-v1_0-3ffb9-simple`` (``meta.pickle.pbz2`` plus one
``{index:06d}.pickle.pbz2`` per architecture) or to the single file
``NATS-tss-v1_0-3ffb9.pickle.pbz2``. Needs the ``nats`` extra (``pip install 'zcnas[nats]'``).

Unlike the CSV table, NATS-Bench holds the logged training times, so :meth:`train_seconds`
gives the simulated training cost of the NAS-Bench-201 search protocol.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from typing import ClassVar

from zcnas.benchmarks._base import Benchmark
from zcnas.benchmarks._base import DatasetInfo
from zcnas.benchmarks._cost import FlopsCostModel
from zcnas.benchmarks._nb201 import NB201_DATASETS
from zcnas.benchmarks._registry import register_benchmark
from zcnas.exceptions import DataError


ENV_VAR = "ZCNAS_NATS_PATH"
DATASETS = ("cifar10", "cifar100", "imagenet16")
# the NATS setting behind each zcnas dataset's test metric ...
_TEST_SETTING = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
# ... and behind its validation metric (CIFAR-10: trained on the train half, scored on x-valid)
_VALID_SETTING = {"cifar10": "cifar10-valid", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}
# metric -> (which setting, schedule hp, key of get_more_info)
_METRICS = {
    "test": (_TEST_SETTING, "200", "test-accuracy"),
    "valid": (_VALID_SETTING, "200", "valid-accuracy"),
    "test_12ep": (_TEST_SETTING, "12", "test-accuracy"),
    "valid_12ep": (_VALID_SETTING, "12", "valid-accuracy"),
}
_FIX = (
    f"pass path=<NATS-tss-v1_0-3ffb9-simple folder> (or set {ENV_VAR}); zcnas never downloads "
    f"it, get it from the NATS-Bench release"
)
_APIS: dict[str, Any] = {}


def _import_nats() -> Any:
    try:
        import nats_bench
    except ImportError as exc:
        raise DataError(
            "the 'nats' benchmark needs the nats_bench package: pip install 'zcnas[nats]'"
        ) from exc
    return nats_bench


def _open_api(path: str) -> Any:
    """The ``nats_bench`` tss API for ``path`` (one per path per process)."""
    if path in _APIS:
        return _APIS[path]
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"NATS-Bench path {p} does not exist; {_FIX}")
    fast_mode = p.is_dir()
    if fast_mode and not (p / "meta.pickle.pbz2").is_file():
        raise DataError(
            f"{p} has no meta.pickle.pbz2, so it is not a NATS-Bench fast-mode folder; {_FIX}"
        )
    nats_bench = _import_nats()
    try:
        api = nats_bench.create(str(p), "tss", fast_mode=fast_mode, verbose=False)
    except Exception as exc:  # nats_bench raises ValueError/KeyError/pickle errors
        raise DataError(
            f"cannot read NATS-Bench tss from {p}: {type(exc).__name__}: {exc}; {_FIX}"
        ) from exc
    _APIS[path] = api
    return api


@register_benchmark("nats")
class NATSBenchmark(Benchmark):
    """NATS-Bench tss (= NAS-Bench-201 cells) accuracies (%) and training times (s).

    Metrics (``query(key, dataset, metric)``), all averaged over the benchmark's trial seeds
    unless ``trial_seed`` picks one:

    * ``test``: 200-epoch test accuracy (CIFAR-10: ori-test after training on train+valid;
      CIFAR-100 and ImageNet16-120: x-test), as ``get_more_info(i, ds, hp='200',
      is_random=False)['test-accuracy']``.
    * ``valid``: 200-epoch x-valid accuracy (CIFAR-10: the ``cifar10-valid`` setting).
    * ``valid_12ep``: 12-epoch x-valid accuracy, the reward of the NAS-Bench-201 search protocol
      (CIFAR-10: ``cifar10-valid`` at ``hp='12'``).
    * ``test_12ep``: 12-epoch test accuracy.

    Args:
        path: the fast-mode folder or the single ``.pickle.pbz2`` file (default
            ``$ZCNAS_NATS_PATH``).
    """

    name: ClassVar[str] = "nats"
    space: ClassVar[str] = "nb201"
    dataset_info: ClassVar[dict[str, DatasetInfo]] = NB201_DATASETS
    metrics: ClassVar[tuple[str, ...]] = tuple(_METRICS)

    def __init__(self, *, path: str | None = None) -> None:
        self.path = path

    # -- plumbing ---------------------------------------------------------------------------
    def _api(self) -> Any:
        path = self.path or os.environ.get(ENV_VAR)
        if not path:
            raise DataError(f"no NATS-Bench path given; {_FIX}")
        return _open_api(str(path))

    def index(self, key: str) -> int:
        """The NATS-Bench index of architecture ``key``; ``DataError`` if it is not there."""
        idx = self._api().query_index_by_arch(key)
        if not isinstance(idx, int) or idx < 0:
            raise DataError(
                f"architecture {key!r} is not in NATS-Bench tss; give a canonical NB201 string "
                f"such as zcnas' nb201 space keys"
            )
        return idx

    def keys(self, dataset: str | None = None) -> list[str]:
        """Every architecture of the benchmark files (each has results on every dataset)."""
        if dataset is not None:
            self.dataset(dataset)  # an unknown name raises DataError naming the choices
        return list(self._api().meta_archs)

    def cost_model(self, space: Any) -> Any:
        """Used only where the files hold no training times: :class:`FlopsCostModel`."""
        return FlopsCostModel(space)

    @staticmethod
    def _setting(table: dict[str, str], dataset: str) -> str:
        if dataset not in table:
            raise DataError(f"unknown NATS dataset {dataset!r}; choose {', '.join(DATASETS)}")
        return table[dataset]

    def _info(self, key: str, setting: str, hp: str, trial_seed: int | None) -> dict[str, Any]:
        api = self._api()
        idx = self.index(key)
        is_random: bool | int = False if trial_seed is None else int(trial_seed)
        try:
            return api.get_more_info(idx, setting, hp=hp, is_random=is_random)
        except AssertionError as exc:  # fast mode: the per-arch file is missing
            raise DataError(
                f"NATS-Bench has no results file for {key!r} (index {idx}): {exc}; the folder "
                f"is incomplete, {_FIX}"
            ) from exc
        except (KeyError, ValueError) as exc:
            raise DataError(
                f"NATS-Bench has no {setting!r} results at hp={hp!r}"
                f"{'' if trial_seed is None else f' for trial seed {trial_seed}'} for {key!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    # -- the Benchmark interface ------------------------------------------------------------
    def query(self, key: str, dataset: str = "cifar10", metric: str = "test", *,
              trial_seed: int | None = None) -> float:
        """Accuracy (%) of ``key``; the mean over trial seeds, or the run of ``trial_seed``."""
        if metric not in _METRICS:
            raise DataError(f"unknown NATS metric {metric!r}; choose {', '.join(_METRICS)}")
        table, hp, field = _METRICS[metric]
        info = self._info(key, self._setting(table, dataset), hp, trial_seed)
        value = info.get(field)
        if value is None:
            raise DataError(f"NATS-Bench records no {field!r} for {key!r} on {dataset} (hp={hp})")
        return float(value)

    def train_seconds(self, key: str, dataset: str = "cifar10", *, hp: str = "12",
                      include_eval: bool = False, trial_seed: int | None = None) -> float | None:
        """Logged training time (s) of the run behind ``valid_12ep`` (``hp="12"``) or ``valid``
        (``hp="200"``): ``get_more_info(...)['train-all-time']`` of the ``cifar10-valid`` setting
        for CIFAR-10, of the dataset's own setting otherwise.

        ``include_eval=True`` adds one epoch of validation time, which is what NATS-Bench's
        ``simulate_train_eval`` charges per evaluated architecture. Returns None if the files
        hold no times.
        """
        info = self._info(key, self._setting(_VALID_SETTING, dataset), str(hp), trial_seed)
        train = info.get("train-all-time")
        if train is None:
            return None
        if include_eval:
            per_eval = info.get("valid-per-time")
            if per_eval is None:
                return None
            return float(train) + float(per_eval)
        return float(train)

    def trial_seeds(self, key: str, dataset: str = "cifar10", hp: str = "12") -> list[int]:
        """The trial seeds recorded for ``key`` in the setting behind ``valid_*`` metrics."""
        api = self._api()
        idx = self.index(key)
        self._info(key, self._setting(_VALID_SETTING, dataset), str(hp), None)  # loads, checks
        results = api.query_by_index(idx, self._setting(_VALID_SETTING, dataset), hp=str(hp))
        return sorted(int(s) for s in results)
