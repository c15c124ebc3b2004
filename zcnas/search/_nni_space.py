"""NNI sample dicts <-> zcnas architectures, without importing NNI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import cast

import optuna

from zcnas.exceptions import InvalidArchError
from zcnas.exceptions import ZcnasError
from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace


def categorical_distributions(
    space: SearchSpace,
) -> dict[str, optuna.distributions.CategoricalDistribution]:
    """``space.distributions``, checked to be categorical (the only kind NNI's multi-trial
    strategies and this adapter handle)."""
    dists = space.distributions
    bad = [n for n, d in dists.items()
           if not isinstance(d, optuna.distributions.CategoricalDistribution)]
    if bad:
        raise ZcnasError(
            f"space {space.name!r} has non-categorical parameters ({', '.join(bad)}); the NNI "
            f"adapter supports categorical spaces only"
        )
    return cast("dict[str, optuna.distributions.CategoricalDistribution]", dists)


def to_sample(space: SearchSpace, arch: Mapping[str, Any] | str) -> dict[str, Any]:
    """The NNI sample of an architecture (dict or key): ``{label: choice}`` in space order."""
    arch = space.as_arch(arch)
    return {name: arch[name] for name in space.distributions}


def _strip_scope(sample: Mapping[str, Any]) -> dict[str, Any]:
    """Drop a label scope shared by all keys (``"cell/0_1"`` -> ``"0_1"``)."""
    prefixes = {k.rsplit("/", 1)[0] for k in sample if "/" in k}
    if len(prefixes) == 1 and all("/" in k for k in sample):
        return {k.rsplit("/", 1)[1]: v for k, v in sample.items()}
    return dict(sample)


def to_arch(space: SearchSpace, sample: Mapping[str, Any]) -> Arch:
    """The zcnas architecture of an NNI sample (the reverse of :func:`to_sample`).

    Accepts samples of :class:`~zcnas.search.nni.ZcnasModelSpace` (labels are the zcnas
    parameter names, possibly under one label scope such as ``"model/"``) and the labelling
    the space translates (:meth:`~zcnas.spaces.SearchSpace.translate`; for ``nb201`` NNI's own
    NAS-Bench-201 space, ``"cell/0_1": "conv_3x3"``).

    Raises:
        InvalidArchError: the sample does not describe an architecture of ``space``.
    """
    names = list(space.distributions)
    arch = space.translate(_strip_scope(sample))
    if set(arch) != set(names):
        raise InvalidArchError(
            f"NNI sample labels {sorted(sample)} do not match the parameters of space "
            f"{space.name!r} ({', '.join(names)})"
        )
    return space.as_arch({name: arch[name] for name in names})


def search_space_json(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """The space in NNI's classic search-space format (``searchSpace`` of an experiment
    config): ``{name: {"_type": "choice", "_value": [...]}}``."""
    return {
        name: {"_type": "choice", "_value": list(dist.choices)}
        for name, dist in categorical_distributions(space).items()
    }
