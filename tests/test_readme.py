"""The README's Python examples run as written (every ```python block preceded by the line
``<!-- runs in CI: tests/test_readme.py -->``), from a fresh working directory."""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys

import pytest


ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- runs in CI: tests/test_readme.py -->"


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(re.escape(MARK) + r"\s*```python\n(.*?)```", text, flags=re.S)


def test_the_readme_has_runnable_examples() -> None:
    assert len(_blocks()) >= 2  # the quick API tour and the define-by-run example


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_example_runs(index: int, tmp_path: Path, shared_data: Path) -> None:
    code = _blocks()[index]
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, check=False,
                         env={"ZCNAS_DATA": str(shared_data), "PATH": "/usr/bin:/bin",
                              "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip(), "an example prints what it shows"
