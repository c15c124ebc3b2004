"""Deprecated: the adapters moved to :mod:`zcnas.search` (``zcnas.search.optuna``,
``zcnas.search.nni``); these aliases stay for one release."""
