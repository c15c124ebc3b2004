#!/usr/bin/env bash
# Prepare what a run of scripts/device_check.sh on the lent GPU machine needs and cannot fetch
# there (it has no network, and sees only the repository). Run it HERE, in the checkout that the
# device tool sends (the session's own checkout):
#
#   bash scripts/device_wheels.sh        # -> .whl/ (wheels) and .device/data/ (two data files)
#
# then, with the device tool:
#
#   run(command="bash scripts/device_check.sh", carry=[".whl", ".device"], timeout_s=540)
#
# .whl/   the packages zcnas needs that the device image (torch 2.11 + CUDA 13, Python 3.12)
#         lacks: optuna, SQLAlchemy, alembic, Mako, colorlog, cmaes, plus setuptools for the
#         editable install (the build backend; pip cannot fetch it there). Versions: those pinned
#         in $ZCNAS_CONSTRAINTS (a pip constraints file: NAME==VERSION lines) if set, else those
#         installed in this checkout's .venv (the environment CI tests); setuptools: the newest
#         in pyproject's build-system range. Python 3.12 / manylinux x86_64 wheels, no deps.
# .device/data/  copies of the shared CIFAR-10 sample and the NB201 accuracy table from
#         $ZCNAS_DATA (the device does not see ../shared); used only by the device run, ignored
#         by git (.gitignore), ~9.5 MB.
# Both folders count towards the device tool's 64 MiB; this leaves ~16 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${ZCNAS_DATA:-$(cd .. && pwd)/shared/data}
NAMES=(optuna sqlalchemy alembic mako colorlog cmaes)
BUILD_REQ='setuptools>=77,<81'  # == [build-system] requires in pyproject.toml

version_of() {  # exact version of $1: the constraints file, else the local .venv
    local name=$1 v=""
    if [ -n "${ZCNAS_CONSTRAINTS:-}" ]; then
        v=$(grep -i -E "^${name}[[:space:]]*==" "$ZCNAS_CONSTRAINTS" | head -1 | sed 's/.*==[[:space:]]*//; s/[[:space:];#].*//' || true)
    fi
    if [ -z "$v" ]; then
        v=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null || true)
    fi
    if [ -z "$v" ]; then
        echo "device_wheels.sh: no version for $name: install the project (bash scripts/setup.sh) or set ZCNAS_CONSTRAINTS" >&2
        exit 2
    fi
    echo "$v"
}

specs=()
for name in "${NAMES[@]}"; do
    specs+=("$name==$(version_of "$name")")
done
specs+=("$BUILD_REQ")

rm -rf .whl
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${specs[@]}"

mkdir -p .device/data/images .device/data/nb201
for f in images/cifar10_test_jpeg2000.npz nb201/nb201_tss_accuracies.csv; do
    if [ ! -f "$DATA/$f" ]; then
        echo "device_wheels.sh: $DATA/$f not found; set ZCNAS_DATA to the shared data folder" >&2
        exit 2
    fi
    cp "$DATA/$f" ".device/data/$f"
done

echo "device_wheels.sh: ${specs[*]}"
ls -1 .whl
du -sh .whl .device | tr '\n' ' '
echo
echo 'next: run(command="bash scripts/device_check.sh", carry=[".whl", ".device"], timeout_s=540)'
