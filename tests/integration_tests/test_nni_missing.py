"""Without NNI installed, the adapter names the install command (runs with or without NNI)."""

from __future__ import annotations

import sys

import pytest

from zcnas.cli import main as cli_main
from zcnas.search import nni as zn


@pytest.fixture()
def no_nni(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "nni" or name.startswith("nni."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "nni", None)  # makes `import nni` raise ImportError


def test_python_api_names_the_install_command(no_nni):
    with pytest.raises(zn.NNINotInstalledError, match=r"pip install 'zcnas\[nni\]'"):
        zn.run_strategy("nb201", "params", "Random", n_trials=1)
    with pytest.raises(ImportError, match="NNI is not installed"):
        zn.ZcnasModelSpace  # noqa: B018  (lazy attribute)


def test_cli_prints_the_install_command_and_exits_2(no_nni, tmp_path, capsys):
    db = tmp_path / "never.db"
    assert cli_main(["nni", "--proxy", "params", "--storage", f"sqlite:///{db}"]) == 2
    assert capsys.readouterr().err.strip() == (
        "zcnas: error: NNI is not installed: pip install 'zcnas[nni]'"
    )
    assert not db.exists()


def test_trial_entry_point_exits_2(no_nni, capsys):
    from zcnas.cli import nni_trial

    assert nni_trial.main(["--proxy", "params", "--study-name", "x"]) == 2
    assert "pip install 'zcnas[nni]'" in capsys.readouterr().err


def test_search_space_json_needs_no_nni(no_nni):
    import zcnas

    space = zcnas.get_space("nb201")
    js = zn.search_space_json(space)
    assert list(js) == list(space.distributions)
    assert all(v["_type"] == "choice" for v in js.values())
    arch = space.arch_at(123)
    assert zn.to_arch(space, zn.to_sample(space, arch)) == arch
