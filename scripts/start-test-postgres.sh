#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server for quivox's store tests and prints the shell line that
# exports its URL, so that callers can do:
#
#     eval "$(bash scripts/start-test-postgres.sh)"
#     cargo test --release --test store
#
# Idempotent: installs Debian's `postgresql` package only if no server binaries are present,
# reuses an already running test server (same data directory), and creates the test database only
# if it is missing. Everything except the final `export` line goes to stderr.
#
# Environment (all optional):
#   QUIVOX_TEST_PG_DIR   where the cluster lives (default /tmp/quivox-test-pg); deleting it resets everything
#   QUIVOX_TEST_PG_DB    database name (default quivox_test)
#
# The server listens on 127.0.0.1 only, on the first free port from 54329 upwards, with `trust`
# authentication (test data only, never real enrolments) and fsync off (a crash loses the test
# cluster, which is fine).
set -euo pipefail

PG_DIR=${QUIVOX_TEST_PG_DIR:-/tmp/quivox-test-pg}
PG_DB=${QUIVOX_TEST_PG_DB:-quivox_test}
DATA="$PG_DIR/data"
PORT_FILE="$PG_DIR/port"

log() { echo "start-test-postgres: $*" >&2; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

find_bin() {
  local dir
  # Highest installed major version first.
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

if ! PG_BIN=$(find_bin); then
  log "no PostgreSQL server found under /usr/lib/postgresql: installing Debian's postgresql"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  PG_BIN=$(find_bin) || { log "postgresql installed but no initdb/pg_ctl found"; exit 1; }
fi
log "using $PG_BIN"

# The server refuses to run as root: run it as the `postgres` system user when we are root.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  as_pg() { runuser -u postgres -- "$@"; }
  PG_OWNER=postgres
else
  as_pg() { "$@"; }
  PG_OWNER=$(id -un)
fi

mkdir -p "$PG_DIR"
chmod 755 "$PG_DIR"
[ "$(id -u)" -ne 0 ] || chown "$PG_OWNER" "$PG_DIR"

# Several builds may call this script at once: one at a time. The server must not inherit the
# lock's file descriptor (it would hold the lock for its whole life), hence `9>&-` below.
exec 9>"$PG_DIR/lock"
flock 9

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running=0
if [ -f "$DATA/PG_VERSION" ] && [ -f "$PORT_FILE" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  PORT=$(cat "$PORT_FILE")
  running=1
  log "reusing the server already running in $DATA on port $PORT"
fi

init_cluster() {
  log "initialising a cluster in $DATA"
  rm -rf "$DATA"
  as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-sync >/dev/null 9>&-
}

start_server() {
  PORT=54329
  while ! port_free "$PORT"; do
    PORT=$((PORT + 1))
    [ "$PORT" -lt 54429 ] || { log "no free port in 54329..54428"; exit 1; }
  done
  echo "$PORT" >"$PORT_FILE"
  log "starting on 127.0.0.1:$PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2 9>&-
}

if [ "$running" -eq 0 ]; then
  [ -f "$DATA/PG_VERSION" ] || init_cluster
  if ! start_server; then
    # A cluster left by another PostgreSQL major version, or damaged: it only ever holds test
    # data, so start afresh once.
    log "server did not start; its log:"
    tail -n 20 "$PG_DIR/server.log" >&2 || true
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 9>&- || true
    init_cluster
    start_server || { log "server did not start on a fresh cluster; its log:"; tail -n 30 "$PG_DIR/server.log" >&2; exit 1; }
  fi
fi

exists=$(as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atc \
  "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")
if [ "$exists" != "1" ]; then
  log "creating database $PG_DB"
  as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$PG_DB"
fi

URL="postgres://postgres@127.0.0.1:$PORT/$PG_DB"
log "ready: $URL"
echo "export QUIVOX_TEST_PG_URL='$URL'"
