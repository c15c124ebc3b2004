"""The Benchmark role: ground truth (and what is known about the training behind it) for
architecture keys of one search space."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import ClassVar

from zcnas.exceptions import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What a benchmark's dataset means for the networks that are scored for it.

    Attributes:
        name: the benchmark's dataset name (``cifar10``, ``class_scene``, ...).
        num_classes: classifier width a proxy's network gets for this dataset.
        input_size: (channels, height, width) of the benchmark's images.
        n_train: training images behind the ``test`` metric (0 if unknown).
        n_eval: images of the evaluation split (0 if unknown).
        description: one line for reports (what the images are, what is stood in for).
    """

    name: str
    num_classes: int
    input_size: tuple[int, int, int] = (3, 32, 32)
    n_train: int = 0
    n_eval: int = 0
    description: str = ""


class Benchmark(abc.ABC):
    """Ground-truth lookup. ``query(key, dataset, metric)`` returns e.g. a test accuracy (%).

    Attributes:
        name: registry name.
        space: the name of the search space whose keys it understands.
        dataset_info: dataset name -> :class:`DatasetInfo` (the datasets it has ground truth
            for, in their preferred order).
        metrics: metric names it understands (``"test"`` at least).
        higher_is_better: metric -> True if larger values are better (default: all).
    """

    name: ClassVar[str]
    space: ClassVar[str]
    dataset_info: ClassVar[Mapping[str, DatasetInfo]]
    metrics: ClassVar[tuple[str, ...]] = ("test",)
    higher_is_better: ClassVar[Mapping[str, bool]] = {}

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.dataset_info)

    def dataset(self, name: str) -> DatasetInfo:
        """The :class:`DatasetInfo` of ``name``; ``DataError`` naming the choices otherwise."""
        if name not in self.dataset_info:
            raise DataError(f"unknown {self.name} dataset {name!r}; choose "
                            f"{', '.join(self.dataset_info)}")
        return self.dataset_info[name]

    @abc.abstractmethod
    def query(self, key: str, dataset: str = "cifar10", metric: str = "test") -> float:
        """The ground-truth value of architecture ``key``; raises ``DataError`` if unknown."""

    def keys(self, dataset: str | None = None) -> list[str]:
        """Every architecture key the benchmark has results for (on ``dataset``, if given),
        in a fixed order. Default: none known (override for tables)."""
        return []

    def encoding(self, key: str) -> str:
        """A string the benchmark's space's ``parse`` accepts for ``key`` (default: the key
        itself; NB101 returns the cell's spec string, since its hash keys cannot be inverted)."""
        return key

    def validate(self, key: str, dataset: str, metric: str) -> None:
        """Raise ``DataError`` naming the fix unless ``query(key, dataset, metric)`` can work
        (fail-fast check before a search or a correlation starts)."""
        self.dataset(dataset)
        self.query(key, dataset=dataset, metric=metric)

    def train_seconds(self, key: str, dataset: str = "cifar10") -> float | None:
        """Logged training cost of ``key`` in seconds, or None if the benchmark has none."""
        return None

    def cost_model(self, space: Any) -> Any:
        """The simulated-training-time model for queries of this benchmark (an object with
        ``seconds(arch, dataset, metric)``), or None when queries are only counted."""
        return None

    def reference_scores(self, dataset: str) -> dict[str, dict[str, float]]:
        """Precomputed proxy scores shipped with the benchmark (e.g. NAS-Bench-Suite-Zero):
        proxy name -> {key: score}. A cross-check, never a target. Default: none."""
        return {}
