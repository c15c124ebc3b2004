"""The ``zcnas`` command line: listings, ``score``, exit codes and one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest
from torch import nn

from zcnas.cli import main
from zcnas.data import Batch
from zcnas.proxies import PROXIES
from zcnas.proxies import Proxy


REPO = Path(__file__).resolve().parent.parent
BEST_C10 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "nor_conv_1x1~2|")
SMALL = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|none~1|skip_connect~2|"
FAST = ["--data", "synthetic", "--batch-size", "4"]


class NaNProxy(Proxy):
    """Always NaN (test proxy)."""

    name = "nan_test"

    def compute(self, model: nn.Module, batch: Batch) -> float:
        return float("nan")


@pytest.fixture()
def nan_proxy() -> Iterator[str]:
    PROXIES.register("nan_test")(NaNProxy)
    yield "nan_test"
    PROXIES._classes.pop("nan_test", None)
    PROXIES._sources.pop("nan_test", None)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zcnas: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_listings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["proxies"], capsys)
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"params", "flops"} <= set(names)
    assert "maximize" in out
    code, out, _ = run(["spaces"], capsys)
    assert code == 0
    assert {"nb201", "nb101", "nats_sss"} <= {line.split()[0] for line in out.splitlines()}
    code, out, _ = run(["benchmarks"], capsys)
    assert code == 0
    assert {"nb201", "nats", "nb101", "nats_sss"} <= {line.split()[0] for line in out.splitlines()}


def test_score_params_matches_the_nb201_count(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["score", "--proxy", "params", "--arch", BEST_C10, "--no-cache", *FAST],
                         capsys)
    assert code == 0, err
    proxy, value, _seconds, arch = out.strip().split("\t")
    assert (proxy, arch) == ("params", BEST_C10)
    assert float(value) == pytest.approx(1.07347, abs=1e-5)


def test_score_json_several_proxies_and_archs(capsys: pytest.CaptureFixture[str],
                                              sqlite_url: str) -> None:
    argv = ["score", "--proxy", "params,flops", "--arch", BEST_C10, SMALL, "--json",
            "--storage", sqlite_url, *FAST]
    code, out, _ = run(argv, capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["proxy"], r["arch"]) for r in rows] == [
        ("params", BEST_C10), ("params", SMALL), ("flops", BEST_C10), ("flops", SMALL)]
    assert all(r["status"] == "complete" and not r["cached"] for r in rows)
    assert rows[0]["value"] > rows[1]["value"]
    code, out, _ = run(argv, capsys)
    again = [json.loads(line) for line in out.splitlines()]
    assert all(r["cached"] for r in again)
    assert [r["value"] for r in again] == [r["value"] for r in rows]


def test_failed_score_exits_1(capsys: pytest.CaptureFixture[str], nan_proxy: str) -> None:
    code, out, _ = run(["score", "--proxy", nan_proxy, "--arch", SMALL, "--no-cache", *FAST],
                       capsys)
    assert code == 1
    assert "FAILED: nan_test returned nan" in out


def test_unknown_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["score", "--proxy", "parms", "--arch", SMALL, "--no-cache", *FAST], capsys)
    assert_one_line_error(code, err, "unknown proxy 'parms'", "did you mean 'params'?")


def test_unknown_space(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["score", "--space", "nb999", "--proxy", "params", "--arch", SMALL,
                        "--no-cache", *FAST], capsys)
    assert_one_line_error(code, err, "unknown space 'nb999'", "nb201")


def test_malformed_arch(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["score", "--proxy", "params", "--arch", "|conv~0|+|none~0|",
                        "--no-cache", *FAST], capsys)
    assert_one_line_error(code, err, "malformed NB201 arch string")


def test_missing_data(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZCNAS_DATA", str(tmp_path))
    code, _, err = run(["score", "--proxy", "params", "--arch", SMALL, "--no-cache"], capsys)
    assert_one_line_error(code, err, "ZCNAS_DATA")


def test_bad_proxy_params(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["score", "--proxy", "params", "--arch", SMALL, "--proxy-params", "{x",
                        "--no-cache", *FAST], capsys)
    assert_one_line_error(code, err, "--proxy-params must be a JSON object")
    code, _, err = run(["score", "--proxy", "params", "--arch", SMALL, "--proxy-params",
                        '{"nope": 1}', "--no-cache", *FAST], capsys)
    assert_one_line_error(code, err, "bad parameters for proxy 'params'")


def test_bad_input_size_is_one_line_for_score_and_correlate(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, shared_data: Path) -> None:
    db = f"sqlite:///{tmp_path / 'z.db'}"
    code, _, err = run(["correlate", "--proxy", "params", "--n", "2", "--input-size", "3,x",
                        "--storage", db, *FAST], capsys)
    assert_one_line_error(code, err, "--input-size '3,x' must be C,H,W")
    code, _, err = run(["score", "--proxy", "params", "--arch", SMALL, "--input-size",
                        "1,32,32", "--no-cache", "--data", "cifar10", "--batch-size", "4"],
                       capsys)
    assert_one_line_error(code, err, "3 channels", "--data synthetic")
    assert not (tmp_path / "z.db").exists()  # nothing opened before the input was checked


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([], capsys)
    assert code == 2
    assert "usage: zcnas" in out


def _subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "zcnas", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_python_dash_m_zcnas(tmp_path: Path) -> None:
    ok = _subprocess(["score", "--proxy", "params", "--arch", BEST_C10, *FAST], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("params\t1.07347")
    assert (tmp_path / "zcnas.db").is_file()  # the default cache is ./zcnas.db
    bad = _subprocess(["score", "--proxy", "synflw", "--arch", BEST_C10, "--no-cache"], tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("zcnas: error: unknown proxy 'synflw'")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
