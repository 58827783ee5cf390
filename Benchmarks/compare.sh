#!/usr/bin/env bash
# Usage: Benchmarks/compare.sh [compare.sh options]
# Throughput of our pooler vs PgBouncer (and Postgres direct) with the shared bench
# harness, which lives beside the repository in ../shared/bench:
#   1. swift build -c release in the repository root
#   2. a throwaway Postgres (pg-up.sh), PgBouncer (pgbouncer-up.sh) and our pooler
#      (pooler-up.sh), both poolers with the same ini (make-ini.sh)
#   3. compare.sh --a pooler --b pgbouncer --direct PG; options given here are passed
#      through after the defaults, so they win:
#        --clients "10 50" --modes "simple extended" --time 5 --rounds 1
#   4. everything started here is stopped (and the temporary dirs removed) on exit.
# Env: BENCH_DIR (default <repo>/../shared/bench), WORK_DIR (default a new
#      /tmp/pooler-compare.XXXX, removed on exit), PG_PORT=25432, POOLER_PORT=26432,
#      PGBOUNCER_PORT=26433, POOL_MODE=transaction, POOL_SIZE=20, SKIP_BUILD=1 to
#      use the existing release binary, POOLER_EXTRA_INI="workers = 1" for ini lines
#      only our pooler gets.
set -euo pipefail

REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
BENCH=${BENCH_DIR:-$REPO/../shared/bench}
[ -x "$BENCH/compare.sh" ] || { echo "compare.sh: no bench harness at $BENCH (set BENCH_DIR)" >&2; exit 1; }
BENCH=$(cd "$BENCH" && pwd)
PG_PORT=${PG_PORT:-25432} POOLER_PORT=${POOLER_PORT:-26432} PGBOUNCER_PORT=${PGBOUNCER_PORT:-26433}
POOL_MODE=${POOL_MODE:-transaction} POOL_SIZE=${POOL_SIZE:-20}

if [ -n "${WORK_DIR:-}" ]; then WORK=$WORK_DIR; mkdir -p "$WORK"; REMOVE_WORK=
else WORK=$(mktemp -d /tmp/pooler-compare.XXXX); REMOVE_WORK=1
fi
chmod 755 "$WORK"   # postgres and pgbouncer run as the postgres user and must reach their dirs

started_pg=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pidfile in "$WORK/pooler/run.pid" "$WORK/pgbouncer/run.pid"; do
    [ -s "$pidfile" ] && { "$BENCH/stop.sh" "$pidfile" || true; }
  done
  if [ -n "$started_pg" ]; then
    if [ -n "$REMOVE_WORK" ]; then "$BENCH/pg-down.sh" "$WORK/pg" --rm || true
    else "$BENCH/pg-down.sh" "$WORK/pg" || true
    fi
  fi
  [ -n "$REMOVE_WORK" ] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "compare.sh: swift build -c release in $REPO" >&2
  (cd "$REPO" && swift build -c release >&2)
fi
BIN=$(cd "$REPO" && swift build -c release --show-bin-path)/pooler
[ -x "$BIN" ] || { echo "compare.sh: no pooler binary at $BIN" >&2; exit 1; }

started_pg=1
eval "$("$BENCH/pg-up.sh" "$WORK/pg" "$PG_PORT")"
"$BENCH/pgbouncer-up.sh" "$WORK/pgbouncer" "$PGBOUNCER_PORT" "$PG_PORT" "$POOL_MODE" "$POOL_SIZE" >/dev/null
# POOLER_EXTRA_INI: lines for our pooler's ini only (e.g. "workers = 1"; PgBouncer would
# refuse keys it does not know).
EXTRA_INI="${POOLER_EXTRA_INI:-}" \
  "$BENCH/pooler-up.sh" "$BIN" "$WORK/pooler" "$POOLER_PORT" "$PG_PORT" "$POOL_MODE" "$POOL_SIZE" >/dev/null

"$BENCH/compare.sh" \
  --a "127.0.0.1:$POOLER_PORT" --a-name pooler --a-pid "$(<"$WORK/pooler/run.pid")" \
  --b "127.0.0.1:$PGBOUNCER_PORT" --b-name pgbouncer --b-pid "$(<"$WORK/pgbouncer/run.pid")" \
  --direct "$PG_PORT" \
  --clients "10 50" --modes "simple extended" --time 5 --rounds 1 \
  "$@"
