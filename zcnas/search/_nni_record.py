"""The parts of the NNI adapter that need no NNI: proxy scoring for strategies, the seeded
random state of a run, and the Optuna study that records every NNI trial in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import timedelta
import logging
import math
import random
from typing import Any

import numpy as np
import optuna
import torch

from zcnas.data import Batch
from zcnas.exceptions import StorageError
from zcnas.exceptions import ZcnasError
from zcnas.proxies import Direction
from zcnas.scoring import Scorable
from zcnas.scoring import score_record
from zcnas.search._study import describe_study
from zcnas.spaces import SearchSpace
from zcnas.storage import ScoreCache
from zcnas.storage import ScoreRecord
from zcnas.storage import redact


_logger = logging.getLogger(__name__)

# study user attrs that identify what a study holds; a second run may only append to a study
# whose values agree
IDENTITY_ATTRS = ("backend", "strategy", "space", "objective", "assisted")


@contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Seed the global torch (CPU), numpy and ``random`` generators for the block, then restore
    them. NNI's RL strategy and tianshou draw from these global generators."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class ProxyScorer:
    """Scores architectures with one proxy through :func:`zcnas.scoring.score_record`.

    ``score_record`` seeds torch for the network's initialisation inside a forked RNG, so the
    random stream of the strategy that asked is left alone (NNI's RL policy samples from the
    global torch generator; without the fork every sample between two policy updates would be
    the same).

    Args:
        space: the search space.
        proxy: the proxy.
        batch: the data batch.
        seed: weight-initialisation seed (part of the cache key).
        device: where to score.
        cache: the SQL score cache, or None.
    """

    def __init__(self, space: SearchSpace, proxy: Scorable, batch: Batch, *, seed: int = 0,
                 device: str = "cpu", cache: ScoreCache | None = None) -> None:
        self.space = space
        self.proxy = proxy
        self.batch = batch
        self.seed = seed
        self.device = device
        self.cache = cache
        self.records: dict[str, ScoreRecord] = {}

    def record(self, arch: Mapping[str, Any]) -> ScoreRecord:
        """The score record of ``arch`` (cached in SQL and in memory)."""
        key = self.space.key(arch)
        if key not in self.records:
            self.records[key] = score_record(self.space, self.proxy, arch, self.batch,
                                             seed=self.seed, device=self.device,
                                             cache=self.cache)
        return self.records[key]

    def utility(self, record: ScoreRecord) -> float:
        """The score oriented so that higher is better; ``-inf`` for a failed score."""
        if not record.ok or record.value is None:
            return -math.inf
        return record.value if self.proxy.direction == "maximize" else -record.value

    def argmax(self, archs: Sequence[Mapping[str, Any]]) -> int:
        """Index of the best-scored architecture (the first one on ties or if all fail)."""
        utilities = [self.utility(self.record(a)) for a in archs]
        return int(max(range(len(archs)), key=lambda i: (utilities[i], -i)))


class StudyRecorder:
    """An Optuna study in the zcnas database that receives every trial of one NNI run.

    The study is created (or loaded, if it already holds runs of the same configuration) with
    the identity attributes in ``attrs``. In-process runs are numbered (``nni_runs`` study
    attribute, ``nni_run`` trial attribute); nnictl trials pass their experiment id as ``run``.
    Each call of :meth:`add` stores one finished trial
    with ``study.add_trial``. Failed evaluations are stored as FAIL trials with the reason in
    the ``fail_reason`` user attribute.

    Raises:
        ZcnasError: the study exists but holds another kind of run, or another direction.
        StorageError: the database cannot be used.
    """

    def __init__(self, storage: str, study_name: str, *, direction: Direction,
                 attrs: Mapping[str, Any], run: str | None = None) -> None:
        self.storage = storage
        self.study_name = study_name
        try:
            study = optuna.create_study(
                storage=storage, study_name=study_name, direction=direction, load_if_exists=True,
            )
        except Exception as exc:  # optuna wraps SQLAlchemy errors in several types
            raise StorageError(
                f"cannot open study {study_name!r} in {redact(storage)}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
            ) from exc
        existing = study.user_attrs
        if study.direction.name.lower() != direction:
            raise ZcnasError(
                f"study {study_name!r} already exists with direction "
                f"{study.direction.name.lower()}; this run needs {direction}: choose another "
                f"--study-name"
            )
        clash = [k for k in IDENTITY_ATTRS if k in existing and existing[k] != attrs.get(k)]
        if clash or (study.trials and "backend" not in existing):
            held = ", ".join(f"{k}={existing.get(k)!r}" for k in IDENTITY_ATTRS if k in existing)
            raise ZcnasError(
                f"study {study_name!r} already holds another run ({held or 'not an NNI run'}); "
                f"choose another --study-name"
            )
        for k, v in attrs.items():
            if existing.get(k) != v:
                study.set_user_attr(k, v)
        objective = str(attrs.get("objective", ""))
        kind, _, what = objective.partition(":")
        bench = what.split("/") if kind == "benchmark" else []
        describe_study(study, kind=kind or "proxy", space=str(attrs.get("space", "?")),
                       objective=(bench[2] if len(bench) == 3 else what) or "?",
                       metric_names=[what.replace("/", " ") or "value"],
                       benchmark=bench[0] if bench else attrs.get("benchmark"),
                       dataset=bench[1] if bench else attrs.get("dataset"),
                       metric=bench[2] if bench else attrs.get("metric"),
                       sampler=str(attrs.get("strategy", "?")),
                       assist="nni-assisted" if attrs.get("assisted") else "none", backend="nni")
        self.run: int | str
        if run is None:  # one in-process run: number it
            self.run = int(existing.get("nni_runs", 0)) + 1
            study.set_user_attr("nni_runs", self.run)
        else:  # one trial process of an nnictl experiment: the experiment id
            self.run = run
        self.study = study

    def add(self, arch: Mapping[str, Any], distributions: Mapping[str, Any], value: float | None,
            *, reason: str | None = None, user_attrs: Mapping[str, Any] | None = None,
            wall_seconds: float | None = None) -> None:
        """Store one finished trial: COMPLETE with ``value``, or FAIL with ``reason``; it
        started ``wall_seconds`` before now (the dashboard's timeline shows its duration)."""
        attrs = {**(user_attrs or {}), "nni_run": self.run}
        if value is None:
            attrs["fail_reason"] = reason or "no value"
            trial = optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL, params=dict(arch),
                distributions=dict(distributions), user_attrs=attrs,
            )
        else:
            trial = optuna.trial.create_trial(
                params=dict(arch), distributions=dict(distributions), value=float(value),
                user_attrs=attrs,
            )
        if wall_seconds:
            assert trial.datetime_complete is not None  # create_trial sets it on finished trials
            trial.datetime_start = trial.datetime_complete - timedelta(seconds=wall_seconds)
        self.study.add_trial(trial)
