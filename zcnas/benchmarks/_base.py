"""The Benchmark role: ground truth for an architecture key."""

from __future__ import annotations

import abc
from typing import ClassVar


class Benchmark(abc.ABC):
    """Ground-truth lookup. ``query(key, dataset, metric)`` returns e.g. a test accuracy (%).

    Attributes:
        name: registry name.
        space: the name of the search space whose keys it understands.
        datasets: datasets it has ground truth for.
        metrics: metric names it understands (``"test"`` at least).
    """

    name: ClassVar[str]
    space: ClassVar[str]
    datasets: ClassVar[tuple[str, ...]]
    metrics: ClassVar[tuple[str, ...]] = ("test",)

    @abc.abstractmethod
    def query(self, key: str, dataset: str = "cifar10", metric: str = "test") -> float:
        """The ground-truth value of architecture ``key``; raises ``DataError`` if unknown."""

    def train_seconds(self, key: str, dataset: str = "cifar10") -> float | None:
        """Simulated training cost of ``key`` in seconds, or None if the benchmark has none."""
        return None
