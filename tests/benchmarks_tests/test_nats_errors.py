"""NATS-Bench read errors keep their cause (needs no nats_bench: its module is faked)."""

from __future__ import annotations

from pathlib import Path
import traceback
from types import SimpleNamespace

import pytest

from zcnas.benchmarks import _nats
from zcnas.exceptions import DataError


def test_an_unreadable_nats_file_is_a_data_error_that_keeps_its_cause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def create(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("invalid load key, 'x'")

    monkeypatch.setattr(_nats, "_import_nats", lambda: SimpleNamespace(create=create))
    bad = tmp_path / "NATS-tss-v1_0-3ffb9-simple.pickle.pbz2"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot read NATS-Bench tss from .*ValueError") as info:
        _nats._open_api(str(bad))
    assert isinstance(info.value.__cause__, ValueError)  # not hidden by `from None`
    assert "invalid load key" in "".join(traceback.format_exception(info.value))
