"""The package's import rules (the layers themselves are checked by import-linter, configured in
pyproject.toml and run by scripts/test.sh): no module imports another sub-package's private
module (``zcnas.<pkg>._<mod>``), so each sub-package's ``__init__`` is its whole public API."""

from __future__ import annotations

import ast
from pathlib import Path

import zcnas


ROOT = Path(zcnas.__file__).resolve().parent


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])  # zcnas.<pkg>


def test_no_module_imports_another_packages_private_module() -> None:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        here = ".".join(rel.parts)
        for line, target in _imports(path):
            parts = target.split(".")
            if parts[0] != "zcnas" or len(parts) < 3:
                continue
            private = any(p.startswith("_") and not p.startswith("__") for p in parts[2:])
            if private and _package(target) != _package(here):
                bad.append(f"{rel}.py:{line} imports {target}")
    assert not bad, "cross-package imports of private modules:\n" + "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rule above is not vacuous: a private cross-package import is found by _imports."""
    f = tmp_path / "m.py"
    f.write_text("from zcnas.search._study import create_study\n")
    found = [t for _, t in _imports(f)]
    assert "zcnas.search._study.create_study" in found
    assert _package("zcnas.search._study") == "zcnas.search"
