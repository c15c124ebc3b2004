"""Storing a finished (in-memory) Optuna study in RDB storage with a few bulk statements.

``optuna.copy_study`` adds one trial at a time, and each attribute with a lookup and an insert:
about a second per trial on a busy small machine. :func:`store_study` writes the same rows as
Optuna's ``RDBStorage`` (trials, values, params, intermediate values, user and system
attributes) with one INSERT per table for the whole study, in one transaction, so a study is
stored whole or not at all. It uses Optuna's own ORM models (``optuna.storages._rdb.models``), as
:func:`zcnas.storage.set_user_attrs` does; the result reads back with ``optuna.load_study``.
"""

from __future__ import annotations

import json

import optuna
from optuna.distributions import distribution_to_json
from optuna.storages import RDBStorage
from sqlalchemy import insert


def store_study(study: optuna.Study, storage: RDBStorage, name: str) -> optuna.Study:
    """Create study ``name`` in ``storage`` holding ``study``'s attributes and trials.

    Raises ``optuna.exceptions.DuplicatedStudyError`` if ``name`` exists (delete it first).
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    target = optuna.create_study(study_name=name, storage=storage, directions=study.directions)
    sid = target._study_id
    for key, value in study.user_attrs.items():
        storage.set_study_user_attr(sid, key, value)
    for key, value in study._storage.get_study_system_attrs(study._study_id).items():
        storage.set_study_system_attr(sid, key, value)
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return target
    with _create_scoped_session(storage.scoped_session, True) as session:
        rows = [models.TrialModel(number=t.number, study_id=sid, state=t.state,
                                  datetime_start=t.datetime_start,
                                  datetime_complete=t.datetime_complete) for t in trials]
        session.add_all(rows)
        session.flush()
        values, params, steps, user, system = [], [], [], [], []
        for row, t in zip(rows, trials):
            tid = row.trial_id
            for objective, v in enumerate(t.values or ()):
                stored, kind = models.TrialValueModel.value_to_stored_repr(v)
                values.append({"trial_id": tid, "objective": objective, "value": stored,
                               "value_type": kind})
            for pname, pvalue in t.params.items():
                dist = t.distributions[pname]
                params.append({"trial_id": tid, "param_name": pname,
                               "param_value": dist.to_internal_repr(pvalue),
                               "distribution_json": distribution_to_json(dist)})
            for step, v in t.intermediate_values.items():
                istored, ikind = models.TrialIntermediateValueModel.\
                    intermediate_value_to_stored_repr(v)
                steps.append({"trial_id": tid, "step": step, "intermediate_value": istored,
                              "intermediate_value_type": ikind})
            user += [{"trial_id": tid, "key": k, "value_json": json.dumps(v)}
                     for k, v in t.user_attrs.items()]
            system += [{"trial_id": tid, "key": k, "value_json": json.dumps(v)}
                       for k, v in t.system_attrs.items()]
        for model, batch in ((models.TrialValueModel, values), (models.TrialParamModel, params),
                             (models.TrialIntermediateValueModel, steps),
                             (models.TrialUserAttributeModel, user),
                             (models.TrialSystemAttributeModel, system)):
            if batch:
                session.execute(insert(model), batch)
    return target
