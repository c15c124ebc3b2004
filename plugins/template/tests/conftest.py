"""Let the tests run from a source checkout too (``pip install -e .`` is the usual way)."""

from __future__ import annotations

from pathlib import Path
import sys


try:
    import zcnas_myproxy  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
