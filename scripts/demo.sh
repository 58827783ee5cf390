#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (initdb into a temp dir, as the postgres OS user when run
# as root) and the pooler in front of it, prints how to connect, and cleans up on Ctrl-C.
# Usage: scripts/demo.sh [POOLER_PORT=6432]
set -euo pipefail
cd "$(dirname "$0")/.."
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
LISTEN_PORT=${1:-6432}

"$(dirname "$0")/install-deps.sh"
echo "building pooler (release)..." >&2
swift build -c release --product pooler >&2
POOLER=$(swift build -c release --show-bin-path)/pooler

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
PGPORT=$(free_port 15432)
LISTEN_PORT=$(free_port "$LISTEN_PORT")

DIR=$(mktemp -d /tmp/pooler-demo.XXXXXX)
chmod 755 "$DIR"
run_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid postgres --regid postgres --init-groups "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
  mkdir -p "$DIR/pg"; chown postgres: "$DIR/pg"
fi

POOLER_PID=
cleanup() {
  trap - EXIT INT TERM
  [ -n "$POOLER_PID" ] && kill -INT "$POOLER_PID" 2>/dev/null && wait "$POOLER_PID" 2>/dev/null || true
  run_pg "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
  echo "stopped pooler and PostgreSQL, removed $DIR" >&2
}
trap cleanup EXIT INT TERM

echo "initdb in $DIR/pg/data (port $PGPORT)..." >&2
run_pg "$PGBIN/initdb" -D "$DIR/pg/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
run_pg "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w \
  -o "-p $PGPORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
run_pg psql -X -q -h "$DIR/pg" -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL'
ALTER ROLE postgres PASSWORD 'postgres';
CREATE ROLE app LOGIN PASSWORD 'app';
CREATE DATABASE app OWNER app;
SQL

# PgBouncer userlist with the SCRAM verifiers: no plaintext password in the pooler.
run_pg psql -X -tA -h "$DIR/pg" -p "$PGPORT" -U postgres -d postgres \
  -c "SELECT format('\"%s\" \"%s\"', rolname, rolpassword) FROM pg_authid WHERE rolname IN ('app','postgres') ORDER BY 1" \
  >"$DIR/userlist.txt"
cat >"$DIR/pooler.ini" <<INI
[databases]
app = host=127.0.0.1 port=$PGPORT dbname=app
* = host=127.0.0.1 port=$PGPORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $LISTEN_PORT
unix_socket_dir = $DIR
auth_type = scram-sha-256
auth_file = $DIR/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
admin_users = postgres
stats_users = app
logfile = $DIR/pooler.log
INI

"$POOLER" "$DIR/pooler.ini" &
POOLER_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$LISTEN_PORT") 2>/dev/null && break
  kill -0 "$POOLER_PID" 2>/dev/null || { echo "pooler exited; see $DIR/pooler.log" >&2; exit 1; }
  sleep 0.1
done

cat <<INFO

pooler is running on 127.0.0.1:$LISTEN_PORT in front of PostgreSQL 15 on 127.0.0.1:$PGPORT.

  connect:        psql postgres://app:app@127.0.0.1:$LISTEN_PORT/app
  admin console:  psql postgres://postgres:postgres@127.0.0.1:$LISTEN_PORT/pgbouncer -c 'SHOW POOLS'
  benchmark:      PGPASSWORD=app pgbench -i -h 127.0.0.1 -p $PGPORT -U app app && \\
                  PGPASSWORD=app pgbench -n -S -c 50 -j 2 -T 10 -h 127.0.0.1 -p $LISTEN_PORT -U app app
  config:         $DIR/pooler.ini     log: $DIR/pooler.log

Press Ctrl-C to stop and remove everything.
INFO
wait "$POOLER_PID"
