#!/usr/bin/env bash
# Create .venv (if missing) and install zcnas with every extra the tests use, plus the example
# plugin. Idempotent: a second run only checks that everything is installed.
# Every pip install gets `-c constraints/ci.txt`, the exact set CI runs (pyproject.toml only
# declares ranges): the local CPU torch 2.13.0 (never a multi-GB CUDA build) and the versions that
# worked here. scripts/check_pins.py then fails if something got in that the file does not pin.
# (The template plugin's placeholder proxy is installed only while its own tests run: test.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CONSTRAINTS=constraints/ci.txt
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip -c "$CONSTRAINTS"
.venv/bin/python -m pip install -q -c "$CONSTRAINTS" -e ".[dev,docs,postgres,nats,dashboard,nni]"
.venv/bin/python -m pip install -q -c "$CONSTRAINTS" ./plugins/zcnas-example
.venv/bin/python scripts/check_pins.py "$CONSTRAINTS"
