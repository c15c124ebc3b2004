"""The Proxy role: score a freshly built, untrained model on one batch."""

from __future__ import annotations

import abc
import inspect
from typing import Any
from typing import ClassVar
from typing import Literal

from torch import nn

from zcnas.data import Batch


Direction = Literal["maximize", "minimize"]


class Proxy(abc.ABC):
    """A zero-cost proxy.

    Subclasses set the class attributes and implement :meth:`compute`. Constructors take
    keyword-only hyper-parameters, store them unchanged under the same attribute names, and do
    no work (scikit-learn convention); :meth:`get_params` reads them back for cache keys and
    records.

    Attributes:
        name: registry name (lowercase, the paper's spelling).
        direction: ``"maximize"`` if a higher score predicts a better network.
        version: bump when the numbers change; it is part of the cache key.
        paper: the reference.
        uses_data: False for data-free proxies (params, flops, synflow).
        uses_labels: False when the targets are ignored.
    """

    name: ClassVar[str]
    direction: ClassVar[Direction] = "maximize"
    version: ClassVar[str] = "1"
    paper: ClassVar[str] = ""
    uses_data: ClassVar[bool] = True
    uses_labels: ClassVar[bool] = True

    def check_model(self, model: nn.Module) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~zcnas.exceptions.ScoreError` (one line naming the limitation and a fix)
        if this proxy cannot give a meaningful score on ``model`` at all, e.g. ``naswot`` on a
        model without ``nn.ReLU``. Static and cheap (inspect modules; run nothing), and must not
        change the model. Default: accept every model.

        The scoring choke point calls it on the freshly built model before :meth:`compute`; the
        built-in proxies with requirements also call it at the start of ``compute``. What only
        shows while running (e.g. an op ``vmap`` cannot batch) is raised by ``compute`` itself.
        """

    @abc.abstractmethod
    def compute(self, model: nn.Module, batch: Batch) -> float:
        """Score ``model`` (fresh, in train mode, on the batch's device) on ``batch``.

        May modify the model's weights and buffers (the caller builds a fresh one per score).
        Returns a float; NaN or inf are turned into a recorded failure by the caller.
        """

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to ``__init__`` (JSON-serialisable)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
