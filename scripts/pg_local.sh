#!/usr/bin/env bash
# Start/stop a throw-away local PostgreSQL for tests and CI (Debian's packages, no network access).
#
#   scripts/pg_local.sh start DIR PORT   # prints postgresql+psycopg2://postgres@127.0.0.1:PORT/zcnas
#   scripts/pg_local.sh stop  DIR
#
# The cluster lives in DIR/data (created once, trust auth, superuser "postgres"), listens on
# 127.0.0.1 only, keeps its unix socket in DIR/sock and logs to DIR/postgres.log. As root, the
# server runs as the "postgres" system user (initdb refuses root); DIR must be reachable by it.
# Only the URL goes to stdout, so:  export ZCNAS_TEST_POSTGRES_URL=$(scripts/pg_local.sh start ...)
set -euo pipefail

die() { echo "pg_local.sh: $*" >&2; exit 2; }
usage() { die "usage: $0 start DIR PORT | stop DIR"; }

[ $# -ge 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
port=${3:-55432}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || die "PostgreSQL server not found under /usr/lib/postgresql/*/bin; install it: apt-get install -y postgresql"

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' system user; install the postgresql package"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$dir" "$dir/sock"
      as_pg test -w "$dir" || die "$dir is not writable by user postgres (is a parent directory private, e.g. /root?); use a directory under /tmp"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    if ! as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock" start >/dev/null \
        || { tail -n 20 "$dir/postgres.log" >&2; die "server did not start (port $port in use?)"; }
    fi
    exists=$(as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='zcnas'" postgres)
    if [ "$exists" != 1 ]; then
      as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres zcnas
    fi
    echo "postgresql+psycopg2://postgres@127.0.0.1:$port/zcnas"
    ;;
  stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  *) usage ;;
esac
