"""Adapters to host libraries: ``zcnas.integration.optuna`` (objectives, the proxy-prescreening
sampler, SQL-backed studies; Optuna is a core dependency) and ``zcnas.integration.nni``
(NNI 3.0 model space, evaluators and strategies; the optional ``nni`` extra).

Each adapter imports an optional host library lazily, so ``import zcnas`` never needs it.
"""
