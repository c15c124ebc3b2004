"""A proxy for subprocess tests of workers: the parameter count after sleeping $SLOW_SECONDS.

Subprocesses import it (``import slowproxy``) with ``tests/`` on PYTHONPATH.
"""
import os
import time

from zcnas.proxies import Proxy
from zcnas.proxies import register_proxy


@register_proxy("slow_test")
class SlowProxy(Proxy):
    """Test proxy: the parameter count, after sleeping $SLOW_SECONDS."""

    uses_data = False
    uses_labels = False

    def compute(self, model, batch):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0.2")))
        return sum(p.numel() for p in model.parameters()) / 1e6


@register_proxy("raise_test")
class RaiseOnPool(Proxy):
    """Test proxy: raises RuntimeError for cells whose last edge is avg_pool_3x3 (as a proxy
    bug would), else the parameter count; sleeps $SLOW_SECONDS first."""

    uses_data = False
    uses_labels = False

    def compute(self, model, batch):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
        if type(model.cells[0].edges["edge_2_3"]).__name__ == "AvgPool2d":
            raise RuntimeError("raise_test: pooling cell")
        return sum(p.numel() for p in model.parameters()) / 1e6
