from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path
import shutil
import tempfile

import pytest

from zcnas.data import data_dir


RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
BEST_C10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)
# index 0 of NB201: a weak cell (85.9% on CIFAR-10)
WEAK = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
# output not connected to the input: chance accuracy (10%)
DISCONNECTED = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = data_dir()
    if not (path / "nb201" / "nb201_tss_accuracies.csv").is_file():
        pytest.fail(f"shared data not found at {path}; set ZCNAS_DATA")
    return path


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite database, on /dev/shm when available: Optuna commits ~30 times per trial
    and each fsync on this disk costs ~30 ms, which would dominate the tests."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="zcnas-test-", dir=shm))
        try:
            yield f"sqlite:///{d / 'zcnas.db'}"
        finally:
            shutil.rmtree(d, ignore_errors=True)
    else:
        yield f"sqlite:///{tmp_path / 'zcnas.db'}"


@pytest.fixture()
def postgres_url() -> str:
    """``$ZCNAS_TEST_POSTGRES_URL`` (start one with scripts/pg_local.sh). Unset: skip, but fail
    under CI=true so that CI cannot skip the PostgreSQL tests silently."""
    url = os.environ.get("ZCNAS_TEST_POSTGRES_URL")
    if not url:
        reason = ("ZCNAS_TEST_POSTGRES_URL is not set; start a server with "
                  "`export ZCNAS_TEST_POSTGRES_URL=$(scripts/pg_local.sh start /tmp/zcnas_pg 55432)`")
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return url
