"""zcnas's own Optuna samplers by name (``backend = "zcnas"`` in compare files)."""

from __future__ import annotations

from collections.abc import Mapping
import inspect
from typing import Any

from zcnas.search._arch_samplers import ArchSampler
from zcnas.search._arch_samplers import RegularizedEvolutionSampler
from zcnas.search._arch_samplers import ReinforceSampler
from zcnas.search._config import StudyConfigError
from zcnas.search._evolution import FreeREASampler
from zcnas.search._evolution import OnlineEnsembleSampler
from zcnas.search._features import MemberScorer
from zcnas.search._surrogate import GPSurrogateSampler
from zcnas.search._surrogate import RoBoTSampler
from zcnas.spaces import SearchSpace


ZCNAS_SAMPLERS: dict[str, type[ArchSampler]] = {
    "RegularizedEvolution": RegularizedEvolutionSampler,
    "Reinforce": ReinforceSampler,
    "GPSurrogate": GPSurrogateSampler,
    "OnlineEnsemble": OnlineEnsembleSampler,
    "FreeREA": FreeREASampler,
    "RoBoT": RoBoTSampler,
}
#: samplers that cannot run without proxies (no vanilla mode)
NEEDS_PROXY = ("OnlineEnsemble", "FreeREA", "RoBoT")


def check_kwargs(name: str, kwargs: Mapping[str, Any], where: str = "") -> None:
    """A :class:`StudyConfigError` naming the valid arguments if ``kwargs`` has another."""
    cls = ZCNAS_SAMPLERS[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters
               if p not in ("self", "space", "scorer", "seed")]
    for key in kwargs:
        if key not in allowed:
            raise StudyConfigError(f"{where}{name} has no argument {key!r}; valid: "
                                   f"{', '.join(allowed)}")


def make_zcnas_sampler(name: str, space: SearchSpace, *, scorer: MemberScorer | None,
                       seed: int, kwargs: Mapping[str, Any]) -> ArchSampler:
    """``ZCNAS_SAMPLERS[name](space, scorer=..., seed=..., **kwargs)``; a bad argument is a
    :class:`StudyConfigError` naming the valid ones."""
    check_kwargs(name, kwargs)
    return ZCNAS_SAMPLERS[name](space, scorer=scorer, seed=seed,  # type: ignore[call-arg]
                                **dict(kwargs))
