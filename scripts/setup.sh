#!/usr/bin/env bash
# Create .venv (if missing) and install zcnas with every extra the tests use, plus the example
# plugin. Idempotent: a second run only checks that everything is installed. (The template
# plugin's placeholder proxy is installed only while its own tests run: scripts/test.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip>=24"
# torch is pinned to the local CPU build (never unpinned: that pulls a multi-GB CUDA build)
.venv/bin/python -m pip install -q -e ".[dev,postgres,nats,dashboard,nni]"
.venv/bin/python -m pip install -q ./plugins/zcnas-example
