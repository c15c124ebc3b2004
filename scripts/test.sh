#!/usr/bin/env bash
# The test command (README.md and .ci/run call exactly this):
#   install into .venv (the exact set of constraints/ci.txt), start a throw-away PostgreSQL on
#   127.0.0.1, run ruff, build the docs site (mkdocs --strict) and run pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k cache`).
set -euo pipefail
cd "$(dirname "$0")/.."
export ZCNAS_DATA=${ZCNAS_DATA:-$(cd .. && pwd)/shared/data}
bash scripts/setup.sh

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "test.sh: PostgreSQL is not installed; run: sudo apt-get install -y postgresql" >&2
        exit 2
    fi
fi
pgdir=$(mktemp -d /tmp/zcnas-pg.XXXXXX)
chmod 755 "$pgdir"
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ZCNAS_TEST_POSTGRES_URL=$(bash scripts/pg_local.sh start "$pgdir" "$port")
export ZCNAS_TEST_POSTGRES_URL
site=$(mktemp -d /tmp/zcnas-site.XXXXXX)
trap 'bash scripts/pg_local.sh stop "$pgdir"; rm -rf "$pgdir" "$site"; .venv/bin/python -m pip uninstall -q -y zcnas-myproxy 2>/dev/null || true' EXIT

.venv/bin/ruff check zcnas tests plugins scripts docs
.venv/bin/lint-imports  # the layers: imports only go down (pyproject.toml [tool.importlinter])
.venv/bin/mypy zcnas  # type-checked (pyproject.toml [tool.mypy])
.venv/bin/mkdocs build --strict --quiet --site-dir "$site"
# each plugin is its own test root (its own conftest.py), as it would be in its own repository;
# the template's placeholder proxy is installed only for its own tests, then removed again
.venv/bin/python -m pip install -q -c constraints/ci.txt ./plugins/template
.venv/bin/python -m pytest plugins/zcnas-example/tests plugins/template/tests -q -rs -p no:cacheprovider
.venv/bin/python -m pip uninstall -q -y zcnas-myproxy  # (and again on exit, whatever happened)
.venv/bin/python -m pytest tests -q -rs "$@"
# the device check's CPU half at its tiny size (issue 17): says that the GPU part was skipped
bash scripts/device_check.sh --size tiny
