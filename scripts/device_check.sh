#!/usr/bin/env bash
# The GPU device check of issue 17, one command; without CUDA it runs its CPU half.
#
#   bash scripts/device_check.sh [--size tiny|small|full] [--out DIR] [--budget SECONDS]
#                                [--slice-size N] [--workers N]
#
# On the lent GPU machine (prepare here first: bash scripts/device_wheels.sh), with the device
# tool:  run(command="bash scripts/device_check.sh", carry=[".whl", ".device"], timeout_s=540)
#   1. installs the carried wheels (.whl/: optuna, SQLAlchemy, alembic, ... that the image
#      lacks) into /tmp/zcnas-site (PYTHONPATH) and zcnas itself with
#      `pip install --no-deps --no-build-isolation --no-index -e .` into the image's Python
#      (beside its own torch); if that install fails, zcnas runs from the checkout (PYTHONPATH)
#      and the JSON says so;
#   2. uses the carried data (.device/data) unless $ZCNAS_DATA points at the shared data;
#   3. runs scripts/device_check.py: the CUDA consistency tests, `zcnas bench` on cuda, the
#      sign-precision measurement, `zcnas bench --suite throughput` and a timed
#      `zcnas score-space --slice 0:3000`, writing $OUT/device_check.json (full size, ~8 min
#      at most: every step has a time limit inside --budget, default 480 s).
# Without CUDA (CI: `--size tiny`) the same steps run on the CPU and the JSON and the output say
# that the GPU part was skipped and why. Exit status 0 when every step passed its checks.
# ZCNAS_CHECK_FORCE_INSTALL=1 takes the install branch without CUDA too (to try the device's
# install path on a CPU machine, e.g. with PYTHON=<a bare venv's python>).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
export PYTHONUNBUFFERED=1

cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
if [ "$cuda" = 1 ] || [ "${ZCNAS_CHECK_FORCE_INSTALL:-0}" = 1 ]; then
    if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/zcnas-site .whl/*.whl
        export PYTHONPATH=/tmp/zcnas-site${PYTHONPATH:+:$PYTHONPATH}
    elif ! "$PY" -c 'import optuna, sqlalchemy, alembic' 2>/dev/null; then
        echo "device_check.sh: optuna/SQLAlchemy/alembic are missing and no .whl/ was carried; run" \
             "'bash scripts/device_wheels.sh' where pip works and carry .whl" >&2
        exit 2
    fi
    if "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >/tmp/zcnas-install.log 2>&1; then
        export ZCNAS_CHECK_INSTALL="pip install --no-deps -e . (editable)"
    else
        echo "device_check.sh: editable install failed (tail of the log below); running from the checkout" >&2
        tail -5 /tmp/zcnas-install.log >&2
        export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
        export ZCNAS_CHECK_INSTALL="PYTHONPATH=checkout (editable install failed)"
    fi
fi
if [ -z "${ZCNAS_DATA:-}" ] || [ ! -f "${ZCNAS_DATA}/nb201/nb201_tss_accuracies.csv" ]; then
    if [ -f .device/data/nb201/nb201_tss_accuracies.csv ]; then
        export ZCNAS_DATA=$PWD/.device/data
    fi
fi
exec "$PY" scripts/device_check.py "$@"
