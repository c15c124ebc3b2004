from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import shutil
import tempfile

import pytest


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite database, on /dev/shm when available: Optuna commits ~30 times per trial
    and each fsync on a disk costs ~30 ms here, which would dominate these tests."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="zcnas-test-", dir=shm))
        try:
            yield f"sqlite:///{d / 'zcnas.db'}"
        finally:
            shutil.rmtree(d, ignore_errors=True)
    else:
        yield f"sqlite:///{tmp_path / 'zcnas.db'}"
