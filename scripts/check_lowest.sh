#!/usr/bin/env bash
# Check that the lower bounds in pyproject.toml are real: in a throw-away venv, install zcnas with
# constraints/lowest.txt (each dependency at its lower bound; torch stays the local 2.13.0, the
# only CPU wheel here) and run the tests that exercise optuna, SQLAlchemy/alembic, numpy/scipy and
# matplotlib. About 4 minutes on 2 cores; not part of CI. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZCNAS_DATA=${ZCNAS_DATA:-$(cd .. && pwd)/shared/data}
PY=${PYTHON:-python3}
tmp=$(mktemp -d /tmp/zcnas-check-lowest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q -c constraints/lowest.txt -e . "pytest>=8,<10" "packaging>=23"
"$tmp/venv/bin/python" -m pip list --format=freeze 2>/dev/null \
    | grep -iE '^(torch|optuna|sqlalchemy|alembic|numpy|scipy|cmaes|matplotlib|tqdm)==' | tr '\n' ' '; echo
"$tmp/venv/bin/python" -m pytest -q -rs -p no:cacheprovider -p no:warnings \
    -m "not slow and not postgres and not nni" \
    tests/storage_tests tests/integration_tests/test_optuna.py tests/analysis_tests \
    tests/test_studies.py tests/test_data.py tests/test_packaging.py "$@"
