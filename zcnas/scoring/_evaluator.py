"""What can be scored: a single-network :class:`~zcnas.proxies.Proxy`, or an :class:`Evaluator`
(a score composed from other scores: ensembles, a one-shot supernet).

Both have the same identity attributes (``name``, ``version``, ``direction``, ``uses_data``,
``uses_labels``, ``get_params()``), which make the cache key. Evaluators live in the layers above
scoring and register themselves with ``@register_evaluator("name")`` (built-ins and plugins also
through the ``zcnas.evaluators`` entry-point group, so a name resolves without importing them
here); :func:`resolve` turns any name into the right object.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
import difflib
import inspect
import json
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from zcnas._registry import Registry
from zcnas.data import Batch
from zcnas.exceptions import PluginError
from zcnas.exceptions import UnknownComponentError
from zcnas.proxies import PROXIES
from zcnas.proxies import Direction
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy


if TYPE_CHECKING:
    from zcnas.spaces import Arch
    from zcnas.spaces import SearchSpace
    from zcnas.storage import ScoreCache


#: the three honesty tags of a ranking method (see :func:`tag`)
TAGS = ("data-free", "label-free", "fitted-with-labels")


class Evaluator(abc.ABC):
    """A score of an architecture that is not one proxy on one network.

    Subclasses set the class attributes, take keyword-only constructor parameters (stored
    unchanged, read back by :meth:`get_params` for the cache key) and implement
    :meth:`evaluate`, which may score other things through ``zcnas.scoring`` (and so through
    the cache it is given).

    Attributes:
        name, direction, version, paper, uses_data, uses_labels: as for a proxy.
        fitted_on_labels: True for a class whose instances are fitted on benchmark
            accuracies (its :func:`tag` is then ``fitted-with-labels``).
        labels_used: how many benchmark accuracies this instance was fitted on.
    """

    name: ClassVar[str]
    direction: ClassVar[Direction] = "maximize"
    version: str = "1"
    paper: ClassVar[str] = ""
    uses_data: ClassVar[bool] = True
    uses_labels: ClassVar[bool] = True
    fitted_on_labels: ClassVar[bool] = False
    labels_used: int = 0

    @abc.abstractmethod
    def evaluate(self, space: SearchSpace, arch: Arch, batch: Batch, *, seed: int, device: str,
                 cache: ScoreCache | None) -> tuple[float | None, str | None, float]:
        """``(value, failure_reason, compute_seconds)`` for ``arch``; value None iff it failed.

        Compute seconds are what the score costs without any cache (e.g. an ensemble's
        members' stored seconds), so budgets can charge it honestly.
        """

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


Scorable = Proxy | Evaluator


def _validate(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
        raise PluginError(f"evaluator {cls!r} must subclass zcnas.scoring.Evaluator")
    if getattr(cls, "direction", None) not in ("maximize", "minimize"):
        raise PluginError(f"evaluator {cls.__name__}.direction must be 'maximize' or 'minimize'")


EVALUATORS: Registry[Evaluator] = Registry("evaluator", _validate)


def register_evaluator(name: str):  # noqa: ANN201 - decorator
    """Class decorator registering an :class:`Evaluator` subclass as ``name``."""

    def decorator(cls: type[Evaluator]) -> type[Evaluator]:
        cls.name = name
        return EVALUATORS.register(name)(cls)

    return decorator


def resolve(what: Scorable | str, **params: Any) -> Scorable:
    """The proxy or evaluator ``what`` names (an object is returned as is).

    Proxies and evaluators share one namespace; a name registered as both is a plugin error.
    """
    if not isinstance(what, str):
        if params:
            raise UnknownComponentError("parameters only apply to a proxy or evaluator given by "
                                        "name; pass get_proxy(name, **params) or the name")
        return what
    if EVALUATORS.is_registered(what):
        if PROXIES.is_registered(what):
            raise PluginError(f"{what!r} is registered both as a proxy and as an evaluator; "
                              f"rename one of them")
        return EVALUATORS.create(what, **params)
    if PROXIES.is_registered(what):
        return get_proxy(what, **params)
    known = list_scorers()
    close = difflib.get_close_matches(what, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UnknownComponentError(f"unknown proxy {what!r}: {hint}choose one of {', '.join(known)} "
                                f"(`zcnas proxies` lists them)")


def list_scorers() -> list[str]:
    """Every proxy and evaluator name (plugins included)."""
    return sorted({*PROXIES.names(), *EVALUATORS.names()})


def is_evaluator(what: Scorable) -> bool:
    return isinstance(what, Evaluator)


def tag(what: Scorable | type[Proxy] | type[Evaluator]) -> str:
    """``data-free`` (no data at all), ``label-free`` (uses data, no benchmark accuracy
    anywhere) or ``fitted-with-labels`` (fitted on benchmark accuracies: see ``labels_used``).
    Works on instances and on classes."""
    if getattr(what, "fitted_on_labels", False) or int(getattr(what, "labels_used", 0) or 0):
        return "fitted-with-labels"
    return "label-free" if what.uses_data else "data-free"


def params_json(what: Scorable | Mapping[str, Any]) -> str:
    """The hyper-parameters as they enter a cache key: sorted JSON (``str`` for odd values)."""
    params = what if isinstance(what, Mapping) else what.get_params()
    return json.dumps(dict(params), sort_keys=True, default=str)
