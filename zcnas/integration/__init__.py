"""Adapters to host libraries. ``zcnas.integration.optuna``: objectives, the proxy-prescreening
sampler and SQL-backed studies for Optuna (a core dependency)."""
