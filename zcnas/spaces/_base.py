"""The SearchSpace role: which architectures exist and how to build one."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from collections.abc import Mapping
import inspect
import itertools
import json
from typing import Any
from typing import ClassVar

import numpy as np
import optuna
from torch import nn


Arch = dict[str, Any]


class SearchSpace(abc.ABC):
    """A search space: architectures are plain dicts ``{param_name: value}``.

    The parameters and their choices are Optuna distributions (``distributions``), so an Optuna
    ``trial.params`` or an NNI sample is already an architecture. ``key(arch)`` is the canonical
    string that identifies an architecture in caches, benchmarks and reports; ``parse(key)`` is
    its inverse.
    """

    name: ClassVar[str]

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (stored under the same attribute names)."""
        sig = inspect.signature(type(self).__init__)
        return {n: getattr(self, n) for n in sig.parameters if n != "self" and hasattr(self, n)}

    @property
    def cache_name(self) -> str:
        """The space's name in cache keys: the name, plus its parameters when they differ from
        the defaults (a smaller NB201 must not share scores with the real one)."""
        sig = inspect.signature(type(self).__init__)
        changed = {n: v for n, v in self.get_params().items() if v != sig.parameters[n].default}
        return self.name if not changed else f"{self.name}{json.dumps(changed, sort_keys=True)}"

    @property
    @abc.abstractmethod
    def distributions(self) -> dict[str, optuna.distributions.CategoricalDistribution]:
        """Parameter name -> Optuna distribution (categorical for cell spaces)."""

    @abc.abstractmethod
    def key(self, arch: Mapping[str, Any]) -> str:
        """Canonical string of ``arch``; raises ``InvalidArchError`` if it is not in the space."""

    @abc.abstractmethod
    def parse(self, key: str) -> Arch:
        """Inverse of :meth:`key`; raises ``InvalidArchError`` for a malformed string."""

    @abc.abstractmethod
    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        """A freshly initialised ``torch.nn.Module`` for ``arch`` (uses the global torch RNG)."""

    def as_arch(self, arch_or_key: Mapping[str, Any] | str) -> Arch:
        """Accept a dict or a key string and return a validated dict."""
        arch = self.parse(arch_or_key) if isinstance(arch_or_key, str) else dict(arch_or_key)
        self.key(arch)  # validates
        return arch

    def size(self) -> int:
        return int(np.prod([len(d.choices) for d in self.distributions.values()]))

    def sample(self, n: int, seed: int = 0, unique: bool = True) -> list[Arch]:
        """``n`` architectures drawn uniformly at random (seeded), without repeats if ``unique``."""
        rng = np.random.default_rng(seed)
        dists = self.distributions
        total = self.size()
        if unique and n > total:
            raise ValueError(f"asked for {n} unique architectures but the space has {total}")
        if unique:
            picks = rng.choice(total, size=n, replace=False)
            return [self.arch_at(int(i)) for i in picks]
        return [
            {name: d.choices[int(rng.integers(len(d.choices)))] for name, d in dists.items()}
            for _ in range(n)
        ]

    def arch_at(self, index: int) -> Arch:
        """The ``index``-th architecture in the mixed-radix order of ``distributions``."""
        arch: Arch = {}
        for name, d in reversed(list(self.distributions.items())):
            index, r = divmod(index, len(d.choices))
            arch[name] = d.choices[r]
        return {name: arch[name] for name in self.distributions}

    def all_archs(self) -> Iterator[Arch]:
        names = list(self.distributions)
        for values in itertools.product(*(d.choices for d in self.distributions.values())):
            yield dict(zip(names, values))

    def neighbours(self, arch: Mapping[str, Any]) -> list[Arch]:
        """Every architecture that differs from ``arch`` in exactly one parameter."""
        out = []
        for name, d in self.distributions.items():
            for choice in d.choices:
                if choice != arch[name]:
                    out.append({**arch, name: choice})
        return out

    def mutate(self, arch: Mapping[str, Any], rng: np.random.Generator) -> Arch:
        """One random single-parameter mutation of ``arch``."""
        names = list(self.distributions)
        name = names[int(rng.integers(len(names)))]
        others = [c for c in self.distributions[name].choices if c != arch[name]]
        return {**arch, name: others[int(rng.integers(len(others)))]}
