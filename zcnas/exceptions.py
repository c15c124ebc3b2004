"""zcnas exceptions. Every message is one line that names the fix."""

from __future__ import annotations


class ZcnasError(Exception):
    """Base class of every error zcnas raises on purpose (the CLI prints it and exits 2)."""


class UnknownComponentError(ZcnasError, KeyError):
    """A proxy, space, benchmark or sampler name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(ZcnasError):
    """A plugin failed to load or does not follow its role's interface."""


class InvalidArchError(ZcnasError, ValueError):
    """A malformed architecture string or dict."""


class DataError(ZcnasError):
    """Missing or malformed data, benchmark or study file."""


class StorageError(ZcnasError):
    """A database that cannot be reached or used."""


class ScoreError(ZcnasError):
    """A proxy produced no usable score (NaN/inf, out of memory)."""
