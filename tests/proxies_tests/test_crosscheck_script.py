"""scripts/crosscheck_nbsz.py runs, agrees with NB-Suite-Zero on synflow and params, and caches."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import re
from types import ModuleType

import pytest


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "crosscheck_nbsz.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crosscheck_nbsz", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crosscheck_small_run(shared_data, sqlite_url: str, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    script = _load()
    argv = ["--n", "6", "--proxies", "synflow", "params", "--storage", sqlite_url,
            "--batch-size", "4"]
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    for name in ("synflow", "params"):
        row = re.search(rf"^{name}\s+\S+\s+6\s+(\S+)", out, re.M)
        assert row, out
        assert float(row.group(1)) == pytest.approx(1.0)
    assert "12 scores computed" in out
    assert script.main(argv) == 0
    assert "0 scores computed" in capsys.readouterr().out
