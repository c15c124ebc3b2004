"""``zcnas bench`` and zcnas.bench.bench: structure, ratios and the per-sample loop comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zcnas.cli import main
from zcnas.exceptions import ZcnasError
from zcnas.scoring import bench
from zcnas.scoring import format_bench as format_report


def test_bench_times_floor_proxies_and_loops(shared_data) -> None:  # noqa: ANN001
    result = bench(n=2, batch_size=4, proxies=["gradsign", "params"], repeats=1, threads=1,
                   progress=False)
    assert result["device"] == "cpu" and result["torch_threads"] == 1
    assert len(result["nets"]) == 2 and result["nets"][0]["arch"] != result["nets"][1]["arch"]
    for net in result["nets"]:
        methods = net["methods"]
        assert list(methods) == ["floor", "gradsign", "gradsign:loop", "params"]
        assert methods["floor"]["ratio_floor"] == 1.0
        for rec in methods.values():
            assert rec["seconds"] > 0 and isinstance(rec["peak_bytes"], int)
        assert methods["gradsign:loop"]["loop_over_vectorised"] == pytest.approx(
            methods["gradsign:loop"]["seconds"] / methods["gradsign"]["seconds"])
        # the loop reference and the vectorised proxy score the same net alike
        assert methods["gradsign:loop"]["score"] == pytest.approx(
            methods["gradsign"]["score"], rel=1e-3)
    assert set(result["summary"]) == {"floor", "gradsign", "gradsign:loop", "params"}
    text = format_report(result)
    assert "gradsign:loop" in text and "x floor" in text


def test_bench_is_seeded(shared_data) -> None:  # noqa: ANN001
    a = bench(n=1, batch_size=2, proxies=["params"], repeats=1, progress=False, seed=5)
    b = bench(n=1, batch_size=2, proxies=["params"], repeats=1, progress=False, seed=5)
    assert a["nets"][0]["arch"] == b["nets"][0]["arch"]
    assert a["nets"][0]["methods"]["params"]["score"] == b["nets"][0]["methods"]["params"]["score"]


def test_bench_rejects_bad_input() -> None:
    with pytest.raises(ZcnasError, match="--n"):
        bench(n=0)


def test_cli_bench_writes_json(shared_data, tmp_path: Path,  # noqa: ANN001
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "--n", "1", "--batch-size", "2", "--proxy", "gradalign",
                 "--repeats", "1", "--threads", "1", "--no-progress", "--out", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data["nets"][0]["methods"]) == {"floor", "gradalign", "gradalign:loop"}
    assert "summary (median over nets)" in capsys.readouterr().out


def test_cli_bench_unknown_proxy_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--proxy", "gradsine", "--no-progress"]) == 2
    assert "did you mean 'gradsign'" in capsys.readouterr().err


def test_bench_channels_last_variant(shared_data) -> None:  # noqa: ANN001
    result = bench(n=1, batch_size=4, proxies=["gradsign"], repeats=1, threads=1, loops=False,
                   variants=["channels_last"], progress=False)
    methods = result["nets"][0]["methods"]
    assert list(methods) == ["floor", "gradsign", "gradsign@channels_last"]
    rec = methods["gradsign@channels_last"]
    assert rec["rel_diff"] == pytest.approx(
        abs(rec["score"] - methods["gradsign"]["score"]) / methods["gradsign"]["score"])
    assert rec["rel_diff"] < 1e-4  # the dead-zone rule (tests/proxies_tests/test_gradsign_variants.py)
    assert result["summary"]["gradsign@channels_last"]["max_rel_diff"] == rec["rel_diff"]
    assert "max rel diff to gradsign" in format_report(result)


def test_bench_offers_no_amp_variant() -> None:
    with pytest.raises(ZcnasError, match="use channels_last"):
        bench(n=1, variants=["amp"])
