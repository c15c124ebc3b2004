from __future__ import annotations

from zcnas._registry import Registry
from zcnas.benchmarks._base import Benchmark
from zcnas.exceptions import PluginError


def _validate(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Benchmark)):
        raise PluginError(f"benchmark {cls!r} must subclass zcnas.benchmarks.Benchmark")


BENCHMARKS: Registry[Benchmark] = Registry("benchmark", _validate)
register_benchmark = BENCHMARKS.register


def get_benchmark(name: str, **params: object) -> Benchmark:
    return BENCHMARKS.create(name, **params)


def list_benchmarks() -> list[str]:
    return BENCHMARKS.names()
