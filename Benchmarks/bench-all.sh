#!/usr/bin/env bash
# Usage: Benchmarks/bench-all.sh [compare.sh options, e.g. --time 5 --rounds 2]
# Everything in one run, ours against PgBouncer (and direct PostgreSQL) on a throwaway
# cluster: idle-client memory, pgbench -S at 1/10/50/200 clients in simple, extended
# and prepared modes with CPU per 100k transactions, connection storms, and
# instructions per transaction under valgrind. Builds the release pooler first and
# runs ../shared/bench/bench-all.sh; results also land in /tmp/bench-all-results.txt.
set -euo pipefail
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
BENCH=${BENCH_DIR:-$REPO/../shared/bench}
[ -x "$BENCH/bench-all.sh" ] || { echo "no bench harness at $BENCH (set BENCH_DIR)" >&2; exit 1; }
swift build -c release --package-path "$REPO" >&2
NAME=${NAME:-pooler} PGPORT=${PGPORT:-25432} A_PORT=${A_PORT:-26432} B_PORT=${B_PORT:-26433} COST_PORT=${COST_PORT:-26434} \
  exec "$BENCH/bench-all.sh" "$REPO/.build/release/pooler" \
  --clients "1 10 50 200" --modes "simple extended prepared" "$@"
