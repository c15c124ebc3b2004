"""Registries: decorator registration, lazy entry-point plugins, duplicates, validation, hints.

Entry points are simulated with a temporary ``<name>-1.0.dist-info`` folder (``METADATA`` +
``entry_points.txt``) put first on ``sys.path``, which is exactly what ``pip install`` leaves
in ``site-packages``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import logging
import os
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest
from torch import nn

from zcnas._registry import Registry
from zcnas.benchmarks import BENCHMARKS
from zcnas.data import Batch
from zcnas.exceptions import PluginError
from zcnas.exceptions import UnknownComponentError
from zcnas.proxies import PROXIES
from zcnas.proxies import Proxy
from zcnas.proxies import get_proxy
from zcnas.proxies import list_proxies
from zcnas.spaces import SPACES
from zcnas.spaces import get_space


REPO = Path(__file__).resolve().parent.parent
REGISTRIES: tuple[Registry, ...] = (PROXIES, SPACES, BENCHMARKS)

GOOD_PROXY = '''
from zcnas.proxies import Proxy

class Half(Proxy):
    """Half the number of parameters (a test plugin)."""
    name = "{name}"
    uses_data = False

    def compute(self, model, batch):
        return sum(p.numel() for p in model.parameters()) / 2.0
'''


def _reset_entry_points() -> None:
    for reg in REGISTRIES:
        reg._entry_points = None


@pytest.fixture()
def registries() -> Iterator[None]:
    """Snapshot the registries and restore them (and the entry-point cache) afterwards."""
    saved = [(dict(r._classes), dict(r._sources)) for r in REGISTRIES]
    _reset_entry_points()
    yield
    for reg, (classes, sources) in zip(REGISTRIES, saved):
        reg._classes.clear()
        reg._classes.update(classes)
        reg._sources.clear()
        reg._sources.update(sources)
    _reset_entry_points()


FakeDist = Callable[..., Path]


@pytest.fixture()
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registries: None
              ) -> Iterator[FakeDist]:
    """``fake_dist(dist, {group: {name: value}}, {module: source})`` installs a fake package."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    modules: list[str] = []

    def make(dist: str, entry_points: dict[str, dict[str, str]],
             sources: dict[str, str] | None = None) -> Path:
        info = root / f"{dist.replace('-', '_')}-1.0.dist-info"  # as wheels name it
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {value}" for name, value in eps.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in (sources or {}).items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
        _reset_entry_points()
        return root

    yield make
    for module in modules:
        sys.modules.pop(module, None)


# -- decorator registration ---------------------------------------------------------------------
def test_builtins_are_registered() -> None:
    assert {"params", "flops"} <= set(list_proxies())
    assert "nb201" in SPACES.names()
    assert {"nb201", "nats"} <= set(BENCHMARKS.names())
    assert get_proxy("params").name == "params"


def test_duplicate_decorator_names_both_sources(registries: None) -> None:
    class Params2(Proxy):
        name = "params"

        def compute(self, model: nn.Module, batch: Batch) -> float:
            return 0.0

    with pytest.raises(PluginError) as err:
        PROXIES.register("params")(Params2)
    message = str(err.value)
    assert "zcnas.proxies._size.ParamsProxy" in message
    assert "Params2" in message
    assert "registered twice" in message
    # registering the same class again is harmless
    PROXIES.register("params")(PROXIES.get_class("params"))


def test_non_proxy_class_is_rejected(registries: None) -> None:
    class NotAProxy:
        name = "nope"

    with pytest.raises(PluginError, match="must subclass zcnas.proxies.Proxy"):
        PROXIES.register("nope")(NotAProxy)  # type: ignore[arg-type]
    assert not PROXIES.is_registered("nope")

    class BadDirection(Proxy):
        name = "bad_direction"
        direction = "up"  # type: ignore[assignment]

        def compute(self, model: nn.Module, batch: Batch) -> float:
            return 0.0

    with pytest.raises(PluginError, match="direction must be 'maximize' or 'minimize'"):
        PROXIES.register("bad_direction")(BadDirection)
    with pytest.raises(PluginError, match="must subclass zcnas.spaces.SearchSpace"):
        SPACES.register("nope")(NotAProxy)  # type: ignore[arg-type]


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownComponentError) as err:
        get_proxy("parms")
    message = str(err.value)
    assert "unknown proxy 'parms': did you mean 'params'?" in message
    assert "`zcnas proxies` lists them" in message
    assert isinstance(err.value, KeyError)  # dict-like lookups keep working
    with pytest.raises(UnknownComponentError, match="unknown space 'nb20': did you mean 'nb201'"):
        get_space("nb20")
    with pytest.raises(UnknownComponentError) as err:
        get_proxy("zzzzzz")
    assert "did you mean" not in str(err.value)
    assert "choose one of" in str(err.value) and "params" in str(err.value)


def test_bad_params_are_a_clear_error() -> None:
    with pytest.raises(UnknownComponentError, match="bad parameters for proxy 'params'"):
        get_proxy("params", alpha=1)


# -- entry points ---------------------------------------------------------------------------------
def test_entry_point_plugin_is_loaded_lazily(fake_dist: FakeDist) -> None:
    fake_dist("zcnas-half", {"zcnas.proxies": {"half": "zcnas_half_plugin:Half"}},
              {"zcnas_half_plugin": GOOD_PROXY.format(name="half")})
    assert PROXIES.is_registered("half")
    assert "zcnas_half_plugin" not in sys.modules  # known by name, not imported yet
    proxy = get_proxy("half")
    assert "zcnas_half_plugin" in sys.modules
    assert type(proxy).__module__ == "zcnas_half_plugin"
    assert "half" in list_proxies()
    assert PROXIES._sources["half"] == "entry point zcnas_half_plugin:Half"


def test_entry_point_plugin_scores_through_zcnas(fake_dist: FakeDist) -> None:
    from zcnas.data import load_batch
    from zcnas.scoring import score

    fake_dist("zcnas-half", {"zcnas.proxies": {"half": "zcnas_half_plugin:Half"}},
              {"zcnas_half_plugin": GOOD_PROXY.format(name="half")})
    arch = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
    batch = load_batch("synthetic", batch_size=2)
    assert score("nb201", "half", arch, batch) == pytest.approx(
        score("nb201", "params", arch, batch) * 1e6 / 2)


def test_space_and_benchmark_groups(fake_dist: FakeDist) -> None:
    fake_dist("zcnas-more", {
        "zcnas.spaces": {"nb201_wide": "zcnas_more_plugin:Wide"},
        "zcnas.benchmarks": {"const": "zcnas_more_plugin:Const"},
    }, {"zcnas_more_plugin": '''
        from zcnas.benchmarks import Benchmark
        from zcnas.spaces import NB201Space

        class Wide(NB201Space):
            name = "nb201_wide"
            def __init__(self, *, channels=32, cells_per_stage=1):
                super().__init__(channels=channels, cells_per_stage=cells_per_stage)

        class Const(Benchmark):
            name = "const"
            space = "nb201"
            datasets = ("cifar10",)
            def query(self, key, dataset="cifar10", metric="test"):
                return 50.0
        '''})
    assert "nb201_wide" in SPACES.names()
    assert get_space("nb201_wide").channels == 32
    assert BENCHMARKS.create("const").query("anything") == 50.0


def test_broken_plugin_is_named_and_does_not_break_the_others(
        fake_dist: FakeDist, caplog: pytest.LogCaptureFixture) -> None:
    fake_dist("zcnas-broken", {"zcnas.proxies": {"broken": "zcnas_broken_plugin:Broken"}},
              {"zcnas_broken_plugin": "import a_module_that_does_not_exist\n"})
    with pytest.raises(PluginError) as err:
        get_proxy("broken")
    message = str(err.value)
    assert "plugin proxy 'broken' (zcnas_broken_plugin:Broken) failed to import" in message
    assert "a_module_that_does_not_exist" in message
    assert "uninstall" in message
    # listing still works: the broken plugin is left out with a warning that names it
    with caplog.at_level(logging.WARNING, logger="zcnas._registry"):
        names = list_proxies()
    assert "params" in names and "broken" not in names
    assert "plugin proxy 'broken'" in caplog.text
    # an unknown name still gets its hint
    with pytest.raises(UnknownComponentError, match="did you mean 'params'"):
        get_proxy("parms")


def test_missing_attribute_in_plugin(fake_dist: FakeDist) -> None:
    fake_dist("zcnas-typo", {"zcnas.proxies": {"typo": "zcnas_typo_plugin:Typo"}},
              {"zcnas_typo_plugin": "X = 1\n"})
    with pytest.raises(PluginError, match="plugin proxy 'typo' .*failed to import"):
        get_proxy("typo")


def test_entry_point_to_a_non_proxy_is_rejected(fake_dist: FakeDist) -> None:
    fake_dist("zcnas-notproxy", {"zcnas.proxies": {"notproxy": "zcnas_notproxy_plugin:Thing"}},
              {"zcnas_notproxy_plugin": "class Thing:\n    name = 'notproxy'\n"})
    with pytest.raises(PluginError) as err:
        get_proxy("notproxy")
    assert "must subclass zcnas.proxies.Proxy" in str(err.value)
    assert "zcnas_notproxy_plugin" in str(err.value)
    assert "notproxy" not in PROXIES._classes


def test_entry_point_name_must_match_the_class_name(fake_dist: FakeDist) -> None:
    """The cache key uses ``proxy.name``: a plugin registered as one name but calling itself
    another would store its scores under the wrong proxy."""
    fake_dist("zcnas-misnamed", {"zcnas.proxies": {"alias": "zcnas_misnamed_plugin:Half"}},
              {"zcnas_misnamed_plugin": GOOD_PROXY.format(name="half_proxy")})
    with pytest.raises(PluginError, match="'alias'.*'half_proxy'"):
        get_proxy("alias")


def test_plugin_shadowing_a_builtin_names_both(fake_dist: FakeDist) -> None:
    fake_dist("zcnas-shadow", {"zcnas.proxies": {"params": "zcnas_shadow_plugin:Half"}},
              {"zcnas_shadow_plugin": GOOD_PROXY.format(name="params")})
    with pytest.raises(PluginError) as err:
        get_proxy("params")
    message = str(err.value)
    assert "zcnas.proxies._size.ParamsProxy" in message
    assert "zcnas_shadow_plugin:Half" in message


def test_two_plugins_with_one_name_name_both(fake_dist: FakeDist) -> None:
    fake_dist("zcnas-one", {"zcnas.proxies": {"twin": "zcnas_one_plugin:Half"}},
              {"zcnas_one_plugin": GOOD_PROXY.format(name="twin")})
    fake_dist("zcnas-two", {"zcnas.proxies": {"twin": "zcnas_two_plugin:Half"}},
              {"zcnas_two_plugin": GOOD_PROXY.format(name="twin")})
    with pytest.raises(PluginError) as err:
        get_proxy("twin")
    message = str(err.value)
    assert "zcnas_one_plugin:Half" in message and "zcnas_two_plugin:Half" in message


@pytest.mark.slow
def test_import_zcnas_and_cli_survive_a_broken_plugin(fake_dist: FakeDist) -> None:
    root = fake_dist("zcnas-broken", {
        "zcnas.proxies": {"broken": "zcnas_broken_plugin:Broken"},
        "zcnas.spaces": {"broken_space": "zcnas_broken_plugin:Broken"},
    }, {"zcnas_broken_plugin": "raise RuntimeError('boom at import')\n"})
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(root), str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "zcnas", "proxies"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "params" in proc.stdout
    assert "plugin proxy 'broken'" in proc.stderr and "boom at import" in proc.stderr
