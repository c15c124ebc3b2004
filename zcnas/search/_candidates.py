"""Candidate architectures for proxy-assisted search, shared by the Optuna prescreen sampler and
the NNI assisted strategies (one definition of G-REA's move proposal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zcnas.spaces import Arch
from zcnas.spaces import SearchSpace


def mutation_candidates(space: SearchSpace, parent: Mapping[str, Any], n: int,
                        rng: np.random.Generator) -> list[Arch]:
    """``n`` distinct random valid single-parameter mutations of ``parent`` (all of its
    neighbours when it has at most ``n``): GradSign's G-REA / zero-cost-nas's move proposal."""
    parent = {name: parent[name] for name in space.distributions}
    neighbours = space.neighbours(parent)
    if n >= len(neighbours):
        return neighbours
    picks = rng.choice(len(neighbours), size=n, replace=False)
    return [neighbours[int(i)] for i in picks]
