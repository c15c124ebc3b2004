"""Ensembles of proxies, built on ``zcnas.scoring``: the label-free rank aggregation
(``ensemble``) and weights fitted on labelled cells (``learned_ensemble``, ``fit_ensemble``).

Both are evaluators: ``zcnas.score(space, "ensemble", arch, batch)`` and every search and
report accept them by name, like a proxy.
"""

from zcnas.ensembles._fit import fit_ensemble
from zcnas.ensembles._fit import fit_weights
from zcnas.ensembles._fit import label_budget
from zcnas.ensembles._fit import member_features
from zcnas.ensembles._fit import rank_features
from zcnas.ensembles._pool import AZNAS_MEMBERS
from zcnas.ensembles._pool import CONSENSUS_CANDIDATES
from zcnas.ensembles._pool import DEFAULT_MEMBERS
from zcnas.ensembles._pool import VKDNW_AGG_MEMBERS
from zcnas.ensembles._pool import AZNASEnsemble
from zcnas.ensembles._pool import ConsensusEnsemble
from zcnas.ensembles._pool import LearnedEnsemble
from zcnas.ensembles._pool import PoolEnsemble
from zcnas.ensembles._pool import RankEnsemble
from zcnas.ensembles._pool import VKDNWEnsemble
from zcnas.ensembles._pool import consensus_selection
from zcnas.ensembles._pool import log_quantile


__all__ = [
    "AZNASEnsemble", "AZNAS_MEMBERS", "CONSENSUS_CANDIDATES", "ConsensusEnsemble",
    "DEFAULT_MEMBERS", "LearnedEnsemble", "PoolEnsemble", "RankEnsemble", "VKDNWEnsemble",
    "VKDNW_AGG_MEMBERS", "consensus_selection", "fit_ensemble", "fit_weights", "label_budget",
    "log_quantile", "member_features", "rank_features",
]
