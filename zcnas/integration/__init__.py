"""Adapters that let host libraries search with zcnas proxies (``zcnas.integration.nni``, ...).

Each adapter imports its host library lazily, so ``import zcnas`` never needs it.
"""
