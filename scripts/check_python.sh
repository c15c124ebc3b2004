#!/usr/bin/env bash
# Check zcnas on other Pythons than CI's 3.11, without torch (only 3.11 has the local CPU wheel;
# elsewhere torch is a multi-GB CUDA download): per interpreter, in a throw-away venv,
#   1) byte-compile zcnas, tests, plugins, scripts and docs (syntax of that version),
#   2) install zcnas (--no-deps) and every dependency but torch, resolved for that version,
#   3) run scripts/smoke_no_torch.py (storage + migrations, an Optuna study, analysis, TOML).
# Usage: bash scripts/check_python.sh [PYTHON ...]   (default: pyenv's 3.10 and 3.13 when present)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    for v in 3.10 3.13; do
        found=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/$v.*/bin/python 2>/dev/null | tail -1 || true)
        [ -n "$found" ] && set -- "$@" "$found"
    done
    [ $# -gt 0 ] || { echo "check_python.sh: no interpreter given and none found in pyenv" >&2; exit 2; }
fi
tmp=$(mktemp -d /tmp/zcnas-check-python.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# the dependencies but torch, read with this machine's python3 (3.10 has no tomllib)
python3 - > "$tmp/requirements.txt" <<'PY'
import re
import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if re.split(r"[ <>=!~;\[]", d, maxsplit=1)[0].lower() != "torch"))
PY
for py in "$@"; do
    version=$("$py" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
    echo "== Python $version ($py)"
    venv="$tmp/venv-$version"
    "$py" -m venv "$venv"
    PYTHONPYCACHEPREFIX="$tmp/pycache" "$venv/bin/python" -m compileall -q zcnas tests plugins scripts docs \
        > "$tmp/compile.log" \
        || { cat "$tmp/compile.log"; echo "FAIL: compileall on $version" >&2; exit 1; }
    echo "compileall: ok"
    "$venv/bin/python" -m pip install -q --upgrade "pip>=24"
    "$venv/bin/python" -m pip install -q -r "$tmp/requirements.txt"
    "$venv/bin/python" -m pip install -q --no-deps -e .
    "$venv/bin/python" -m pip list --format=freeze 2>/dev/null \
        | grep -iE '^(optuna|sqlalchemy|alembic|numpy|scipy|matplotlib|tomli)==' | tr '\n' ' '; echo
    "$venv/bin/python" scripts/smoke_no_torch.py
done
