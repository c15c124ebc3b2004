"""scripts/crosscheck_nbsz.py runs, agrees with NB-Suite-Zero on synflow and params, and caches."""

from __future__ import annotations

import re

import pytest


def test_crosscheck_small_run(shared_data, sqlite_url: str, capsys: pytest.CaptureFixture,  # noqa: ANN001
                              load_script) -> None:  # noqa: ANN001
    script = load_script("crosscheck_nbsz")
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
