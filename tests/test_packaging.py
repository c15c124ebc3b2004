"""pyproject's ranges, the CI constraints and the lowest set agree with each other, and
scripts/check_pins.py finds what is installed but not pinned (or pinned at another version)."""

from __future__ import annotations

from importlib import metadata
import importlib.util
from pathlib import Path
import sys
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
import pytest


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


ROOT = Path(__file__).resolve().parents[1]


def _load_check_pins() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_pins", ROOT / "scripts" / "check_pins.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_pins = _load_check_pins()


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _requirements(extras: bool) -> list[Requirement]:
    project = _project()
    reqs = [Requirement(r) for r in project["dependencies"]]
    if extras:
        reqs += [Requirement(r) for group in project["optional-dependencies"].values()
                 for r in group]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def _pins(name: str) -> dict[str, Version]:
    return {k: Version(v) for k, v in check_pins.read_pins(ROOT / "constraints" / name).items()}


def test_ci_constraints_lie_inside_the_declared_ranges() -> None:
    pins = _pins("ci.txt")
    for req in _requirements(extras=True):
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is a dependency but constraints/ci.txt does not pin it"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints/ci.txt pins {name}=={pins[name]} outside pyproject's {req}")


def test_ci_constraints_hold_the_cpu_torch() -> None:
    # the +cpu local version makes pip fail rather than fall back to a multi-GB CUDA build
    assert _pins("ci.txt")["torch"].local == "cpu"


def test_lowest_set_is_the_lower_bounds() -> None:
    pins = _pins("lowest.txt")
    declared = {canonicalize_name(r.name): r for r in _requirements(extras=False)}
    assert set(pins) == set(declared), "constraints/lowest.txt must pin exactly [project].dependencies"
    for name, req in declared.items():
        lower = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert len(lower) == 1, f"{req} needs one >= lower bound"
        if name == "torch":  # no CPU wheel of torch 2.4 here: the local 2.13.0 stands in
            assert req.specifier.contains(pins[name])
        else:
            assert pins[name] == lower[0], f"lowest.txt pins {name}=={pins[name]}, range is {req}"


def test_read_pins_rejects_a_range(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("# comment\nfoo==1.0  # why\nbar>=2\n")
    with pytest.raises(SystemExit, match="bar>=2"):
        check_pins.read_pins(path)
    path.write_text("# comment\nFoo_Bar==1.0  # why\n\n")
    assert check_pins.read_pins(path) == {"foo-bar": "1.0"}


def test_check_pins_reports_unpinned_and_other_versions() -> None:
    installed = check_pins.installed()
    assert installed["pytest"] == metadata.version("pytest")
    assert "zcnas" not in installed  # the checkout itself, installed from its folder
    assert check_pins.mismatches(dict(installed)) == []
    pins = dict(installed)
    del pins["pytest"]
    pins["packaging"] = "0.0.1"
    bad = check_pins.mismatches(pins)
    assert len(bad) == 2
    assert bad[0].startswith("packaging==") and "0.0.1 is pinned" in bad[0]
    assert bad[1].startswith(f"pytest=={installed['pytest']} is installed but not pinned")
