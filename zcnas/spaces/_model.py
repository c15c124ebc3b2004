"""Spaces for networks that are not cells of a benchmark: one user model (``score_model``) and
the models an Optuna define-by-run function builds (``ProxyObjective(build=...)``)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import copy
import inspect
import json
from typing import Any
from typing import ClassVar

import optuna
import torch
from torch import nn

from zcnas.exceptions import InvalidArchError
from zcnas.spaces._base import Arch
from zcnas.spaces._base import SearchSpace
from zcnas.spaces._module import module_fingerprint


ModelFactory = Callable[..., nn.Module]


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


def reinitialised(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose submodules ran ``reset_parameters()`` again (under the
    caller's torch seed): what scoring an ``nn.Module`` instance means. The caller's model is
    never modified."""
    fresh = copy.deepcopy(model)
    for m in fresh.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
    return fresh


class ModelSpace(SearchSpace):
    """The space of exactly one network: a model factory (called with ``factory_kwargs``, plus
    ``num_classes`` when it takes that argument and it is not given) or an ``nn.Module``
    instance (deep-copied and re-initialised with its modules' ``reset_parameters``, under the
    score's seed; pass a factory to keep a custom initialisation).

    Its only architecture is ``{}``; its key is ``<factory name><kwargs JSON>#<fingerprint>``,
    where the fingerprint (:func:`~zcnas.spaces.module_fingerprint`) hashes the module tree and
    the parameter/buffer names, shapes and dtypes. Covered: any change of layers, widths,
    dtypes, the factory's name or kwargs. Not covered: a change of ``forward`` code or of the
    initialisation inside the same factory name with the same structure (rename the factory, or
    bump ``version`` in ``factory_kwargs``).
    """

    name: ClassVar[str] = "model"

    def __init__(self, factory: ModelFactory | nn.Module, *,
                 factory_kwargs: Mapping[str, Any] | None = None, label: str | None = None,
                 input_size: tuple[int, int, int] = (3, 32, 32)) -> None:
        self.factory = factory
        self.factory_kwargs = dict(factory_kwargs or {})
        self.label = label or _qualname(factory)
        self.input_size = input_size  # type: ignore[misc]
        self._key: str | None = None

    @property
    def cache_name(self) -> str:
        return self.name

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {}

    def _make(self, num_classes: int) -> nn.Module:
        if isinstance(self.factory, nn.Module):
            return reinitialised(self.factory)
        kwargs = dict(self.factory_kwargs)
        try:
            takes_classes = "num_classes" in inspect.signature(self.factory).parameters
        except (TypeError, ValueError):
            takes_classes = False
        if takes_classes and "num_classes" not in kwargs:
            kwargs["num_classes"] = num_classes
        model = self.factory(**kwargs)
        if not isinstance(model, nn.Module):
            raise InvalidArchError(f"{self.label}(**{kwargs}) returned {type(model).__name__}, "
                                   f"not a torch.nn.Module")
        return model

    def key(self, arch: Mapping[str, Any]) -> str:
        if dict(arch):
            raise InvalidArchError(f"a model space has one architecture, {{}}; got {dict(arch)}")
        if self._key is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = self._make(num_classes=10)
            kwargs = json.dumps(self.factory_kwargs, sort_keys=True, default=str)
            self._key = f"{self.label}{kwargs}#{module_fingerprint(model)}"
        return self._key

    def parse(self, key: str) -> Arch:
        if key != self.key({}):
            raise InvalidArchError(f"{key!r} is not this model's key ({self.key({})!r})")
        return {}

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        self.key(arch)
        return self._make(num_classes)

    def size(self) -> int:
        return 1

    def sample(self, n: int, seed: int = 0, unique: bool = True) -> list[Arch]:
        if unique and n > 1:
            raise ValueError(f"a model space has one architecture; asked for {n} unique ones")
        return [{} for _ in range(n)]


class DefineByRunSpace(SearchSpace):
    """The models an Optuna define-by-run function ``build(trial) -> nn.Module`` makes.

    An architecture is the trial's parameters (conditional ones included); ``build`` replays
    them with :class:`optuna.trial.FixedTrial`, so the network is rebuilt from the parameters
    alone. Key: the parameters as sorted JSON, the cache key of every score; the space's cache
    name carries the function's qualified name (and ``version``, if you bump it after changing
    what the function builds).
    """

    name: ClassVar[str] = "define-by-run"

    def __init__(self, build: Callable[[optuna.trial.BaseTrial], nn.Module], *,
                 label: str | None = None, version: str = "1") -> None:
        self.build_fn = build
        self.label = label or _qualname(build)
        self.space_version = version

    @property
    def cache_name(self) -> str:
        suffix = "" if self.space_version == "1" else f"@v{self.space_version}"
        return f"dbr:{self.label}{suffix}"

    @property
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {}

    @property
    def all_valid(self) -> bool:
        return False

    def key(self, arch: Mapping[str, Any]) -> str:
        try:
            return json.dumps(dict(arch), sort_keys=True)
        except TypeError as exc:
            raise InvalidArchError(f"define-by-run parameters must be JSON values: {exc}") from None

    def parse(self, key: str) -> Arch:
        try:
            value = json.loads(key)
        except json.JSONDecodeError as exc:
            raise InvalidArchError(f"not a define-by-run key (JSON of trial params): {exc}") \
                from None
        if not isinstance(value, dict):
            raise InvalidArchError(f"a define-by-run key is a JSON object, got {key!r}")
        return value

    def build(self, arch: Mapping[str, Any], num_classes: int = 10) -> nn.Module:
        try:
            model = self.build_fn(optuna.trial.FixedTrial(dict(arch)))
        except ValueError as exc:  # FixedTrial: a parameter the function asks for is missing
            raise InvalidArchError(f"{self.label} cannot rebuild from {dict(arch)}: {exc}") \
                from None
        if not isinstance(model, nn.Module):
            raise InvalidArchError(f"{self.label}(trial) returned {type(model).__name__}, not a "
                                   f"torch.nn.Module")
        return model

    def size(self) -> int:
        raise NotImplementedError("a define-by-run space has no enumerable size")
