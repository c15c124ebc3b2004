"""Check that the running environment is exactly the pinned set: every installed distribution
(except projects installed from a local folder, such as zcnas itself and the plugins) must appear
in the constraints file with the installed version.

Usage: python scripts/check_pins.py constraints/ci.txt   (exit 1 with one line per mismatch)
"""

from __future__ import annotations

from importlib import metadata
import json
from pathlib import Path
import re
import sys


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line (comments and blanks skipped)."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise SystemExit(f"{path}: {raw!r} is not NAME==VERSION; pin an exact version")
        pins[canonical(name)] = version.strip()
    return pins


def is_local_project(dist: metadata.Distribution) -> bool:
    """Installed from a folder (``pip install -e .``, ``pip install ./plugins/x``)."""
    text = dist.read_text("direct_url.json")
    return bool(text) and "dir_info" in json.loads(text)


def installed() -> dict[str, str]:
    """``name -> version`` of the installed distributions, projects from a local folder left out
    (also their ``*.egg-info`` in the working directory). The first on ``sys.path`` wins."""
    dists = list(metadata.distributions())
    local = {canonical(d.metadata["Name"]) for d in dists if is_local_project(d)}
    out: dict[str, str] = {}
    for dist in dists:
        name = canonical(dist.metadata["Name"])
        if name not in local:
            out.setdefault(name, dist.version)
    return out


def mismatches(pins: dict[str, str], have: dict[str, str] | None = None) -> list[str]:
    """One line per installed distribution (``have``, default :func:`installed`) that is not
    pinned or is pinned at another version."""
    out = []
    for name, version in (installed() if have is None else have).items():
        if name not in pins:
            out.append(f"{name}=={version} is installed but not pinned: add that line (or "
                       f"uninstall it if you installed it by hand)")
        elif pins[name] != version:
            out.append(f"{name}=={version} is installed but {pins[name]} is pinned: "
                       f"reinstall with -c, or change the pin")
    return sorted(out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    path = Path(argv[0])
    bad = mismatches(read_pins(path))
    for line in bad:
        print(f"check_pins: {line} ({path})", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
