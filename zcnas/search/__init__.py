"""Search: zero-cost proxies inside the search tools people already use.

Public modules (each one workflow):
    ``zcnas.search.optuna``    proxies and benchmarks as Optuna objectives, the proxy-prescreening
                               sampler, warm-up, SQL-backed studies with exact trial counts.
    ``zcnas.search.nni``       NNI 3.0 model space, evaluators and strategies (the ``nni`` extra).
    ``zcnas.search.studies``   study files: ``run_study`` (``zcnas run``) and ``report``.
    ``zcnas.search.compare``   assisted vs vanilla search on a benchmark (``zcnas compare``).
    ``zcnas.search.scale``     a whole space scored on many workers (``zcnas score-space``).

Layer: the top of the library (only ``zcnas.cli`` is above it).
"""
