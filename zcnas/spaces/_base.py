"""The SearchSpace role: which architectures exist, how to name, draw, change and build one."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from collections.abc import Mapping
import inspect
import itertools
import json
import math
from typing import Any
from typing import ClassVar

import numpy as np
import optuna
from torch import nn

from zcnas.exceptions import InvalidArchError


Arch = dict[str, Any]
MAX_DRAWS_PER_ARCH = 1000  # rejection-sampling budget before a space is declared (nearly) empty


class SearchSpace(abc.ABC):
    """A search space: architectures are plain dicts ``{param_name: value}``.

    The parameters and their choices are Optuna distributions (``distributions``), so an Optuna
    ``trial.params`` or an NNI sample is already an architecture *encoding*. Not every encoding
    has to be valid (an NB101 cell needs a path from input to output and at most 9 edges, a DARTS
    node two distinct inputs): :meth:`key` is the canonical string of a *valid* architecture and
    raises :class:`~zcnas.exceptions.InvalidArchError` with the reason for any other encoding.
    Two encodings of the same network (isomorphic cells, where the benchmark defines isomorphism)
    may share one key; the key is what caches, benchmarks and reports use.

    Contract for subclasses (only the abstract members are required):

    * ``name`` (registry name) and ``version``: bump ``version`` whenever :meth:`build` changes
      the network of any key; it is part of every score's cache key (:attr:`cache_name`), so
      stale scores are never reused.
    * :meth:`key`, :meth:`parse` (its inverse, up to isomorphism), :meth:`build`.
    * ``distributions``: categorical / int / float Optuna distributions. The defaults of
      :meth:`size`, :meth:`arch_at`, :meth:`sample`, :meth:`mutate` and :meth:`neighbours`
      walk the product of the categorical choices and keep the valid encodings; a space whose
      valid set is known in closed form may override them.

    Every method that returns architectures returns valid ones only.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    #: input images the networks are built for (channels, height, width)
    input_size: ClassVar[tuple[int, int, int]] = (3, 32, 32)

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (stored under the same attribute names)."""
        sig = inspect.signature(type(self).__init__)
        return {n: getattr(self, n) for n in sig.parameters if n != "self" and hasattr(self, n)}

    @property
    def cache_name(self) -> str:
        """The space's name in cache keys: the name, ``@v<version>`` once the version is past
        ``"1"``, and the parameters that differ from the defaults (a smaller NB201 must not
        share scores with the real one)."""
        sig = inspect.signature(type(self).__init__)
        changed = {n: v for n, v in self.get_params().items() if v != sig.parameters[n].default}
        base = self.name if self.version == "1" else f"{self.name}@v{self.version}"
        return base if not changed else f"{base}{json.dumps(changed, sort_keys=True)}"

    @property
    @abc.abstractmethod
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """Parameter name -> Optuna distribution (categorical for cell spaces)."""

    @abc.abstractmethod
    def key(self, arch: Mapping[str, Any]) -> str:
        """Canonical string of ``arch``; raises ``InvalidArchError`` (with the reason) if it is
        not a valid architecture of the space."""

    @abc.abstractmethod
    def parse(self, key: str) -> Arch:
        """An encoding whose :meth:`key` is ``key``; raises ``InvalidArchError`` for a malformed
        string."""

    @abc.abstractmethod
    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        """A freshly initialised ``torch.nn.Module`` for ``arch`` (uses the global torch RNG)."""

    # --- validity -------------------------------------------------------------------------------
    def is_valid(self, arch: Mapping[str, Any]) -> bool:
        """True if ``arch`` is a valid architecture (its :meth:`key` exists)."""
        try:
            self.key(arch)
        except InvalidArchError:
            return False
        return True

    def translate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Map another library's labelling of this space (e.g. NNI's own NAS-Bench-201 model
        space) onto this space's parameters; parameters it does not recognise are returned
        unchanged. Default: the identity."""
        return dict(params)

    def as_arch(self, arch_or_key: Mapping[str, Any] | str) -> Arch:
        """Accept a dict or a key string and return a validated dict."""
        arch = self.parse(arch_or_key) if isinstance(arch_or_key, str) else dict(arch_or_key)
        self.key(arch)  # validates
        return arch

    # --- the encoding grid ------------------------------------------------------------------------
    def _choices(self) -> dict[str, tuple[Any, ...]]:
        out = {}
        for name, dist in self.distributions.items():
            if not isinstance(dist, optuna.distributions.CategoricalDistribution):
                raise InvalidArchError(
                    f"space {self.name!r} parameter {name!r} is not categorical; override "
                    f"size/arch_at/sample for it"
                )
            out[name] = tuple(dist.choices)
        return out

    @property
    def all_valid(self) -> bool:
        """True when every encoding of the grid is valid (override to False otherwise)."""
        return True

    def encodings(self) -> int:
        """Number of encodings in the product of the choices (exact, however large)."""
        return math.prod(len(c) for c in self._choices().values())

    def size(self) -> int:
        """Number of valid architectures (keys). Default: :meth:`encodings` when
        :attr:`all_valid`; other spaces override it with the exact count."""
        if not self.all_valid:
            raise NotImplementedError(f"space {self.name!r} must override size()")
        return self.encodings()

    def arch_at(self, index: int) -> Arch:
        """The ``index``-th encoding in the mixed-radix order of ``distributions`` (the last
        parameter varies fastest). Raises ``InvalidArchError`` if that encoding is invalid."""
        choices = self._choices()
        total = math.prod(len(c) for c in choices.values())
        if not 0 <= index < total:
            raise InvalidArchError(f"index {index} is outside the {total} encodings of "
                                   f"space {self.name!r}")
        arch: Arch = {}
        for name, options in reversed(list(choices.items())):
            index, r = divmod(index, len(options))
            arch[name] = options[r]
        arch = {name: arch[name] for name in choices}
        self.key(arch)
        return arch

    def index_of(self, arch: Mapping[str, Any]) -> int:
        """Inverse of :meth:`arch_at`."""
        index = 0
        for name, options in self._choices().items():
            index = index * len(options) + list(options).index(arch[name])
        return index

    def all_archs(self) -> Iterator[Arch]:
        """Every valid encoding in :meth:`arch_at` order."""
        names = list(self._choices())
        for values in itertools.product(*self._choices().values()):
            arch = dict(zip(names, values))
            if self.all_valid or self.is_valid(arch):
                yield arch

    # --- drawing and changing -------------------------------------------------------------------
    def random_arch(self, rng: np.random.Generator) -> Arch:
        """One valid architecture, each parameter drawn uniformly (rejection of invalid ones)."""
        choices = self._choices()
        for _ in range(MAX_DRAWS_PER_ARCH):
            arch = {n: c[int(rng.integers(len(c)))] for n, c in choices.items()}
            if self.all_valid or self.is_valid(arch):
                return arch
        raise InvalidArchError(f"no valid architecture of {self.name!r} in "
                               f"{MAX_DRAWS_PER_ARCH} uniform draws")

    def sample(self, n: int, seed: int = 0, unique: bool = True) -> list[Arch]:
        """``n`` valid architectures drawn uniformly at random (seeded); with ``unique`` no two
        share a key.

        A space whose encodings are all valid and number at most 2**62 draws ``n`` distinct
        grid indices (so the NB201 sample of a seed never changes); other spaces draw encodings
        parameter by parameter and reject invalid ones and repeated keys.
        """
        if n < 0:
            raise ValueError(f"cannot sample {n} architectures")
        rng = np.random.default_rng(seed)
        if self.all_valid and self.encodings() <= 2**62:
            total = self.encodings()
            if unique and n > total:
                raise ValueError(f"asked for {n} unique architectures but the space has {total}")
            if unique:
                return [self.arch_at(int(i)) for i in rng.choice(total, size=n, replace=False)]
            return [self.random_arch(rng) for _ in range(n)]
        if not unique:
            return [self.random_arch(rng) for _ in range(n)]
        size = self.size()
        if n > size:
            raise ValueError(f"asked for {n} unique architectures but the space has {size}")
        out: list[Arch] = []
        seen: set[str] = set()
        budget = MAX_DRAWS_PER_ARCH * max(1, n)
        while len(out) < n and budget > 0:
            arch = self.random_arch(rng)
            budget -= 1
            k = self.key(arch)
            if k not in seen:
                seen.add(k)
                out.append(arch)
        if len(out) < n:
            raise ValueError(f"found only {len(out)} distinct architectures of {self.name!r} "
                             f"for the {n} asked")
        return out

    def neighbours(self, arch: Mapping[str, Any]) -> list[Arch]:
        """Every valid architecture that differs from ``arch`` in exactly one parameter."""
        out = []
        for name, options in self._choices().items():
            for choice in options:
                if choice != arch[name]:
                    other = {**arch, name: choice}
                    if self.all_valid or self.is_valid(other):
                        out.append(other)
        return out

    def mutate(self, arch: Mapping[str, Any], rng: np.random.Generator) -> Arch:
        """One random valid single-parameter mutation of ``arch`` (``arch`` itself has none)."""
        choices = self._choices()
        names = list(choices)
        for _ in range(MAX_DRAWS_PER_ARCH):
            name = names[int(rng.integers(len(names)))]
            others = [c for c in choices[name] if c != arch[name]]
            if not others:
                continue
            other = {**arch, name: others[int(rng.integers(len(others)))]}
            if self.all_valid or self.is_valid(other):
                return other
        raise InvalidArchError(f"no valid single-parameter mutation of {dict(arch)} found")
