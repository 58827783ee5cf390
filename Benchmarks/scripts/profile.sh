#!/usr/bin/env bash
# Usage: Benchmarks/scripts/profile.sh PGPORT [TX_PER_CLIENT=2000]
# Runs the release pooler under callgrind while pgbench -S (10 clients) goes through it,
# against a PostgreSQL on 127.0.0.1:PGPORT with the bench harness's roles and `bench`
# database (../shared/bench/pg-up.sh), and prints the top functions with inclusive
# costs: the profile to read before optimising anything.
set -euo pipefail
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
BENCH=${BENCH_DIR:-$REPO/../shared/bench}
PGPORT=$1 PER=${2:-2000} LISTEN=${LISTEN:-16499}
RUNDIR=$(mktemp -d /tmp/pooler-profile.XXXX)
chmod 755 "$RUNDIR"
swift build -c release --package-path "$REPO" >/dev/null
WAIT_S=120 WRAP="valgrind --tool=callgrind --callgrind-out-file=$RUNDIR/callgrind.out" \
  "$BENCH/pooler-up.sh" "$REPO/.build/release/pooler" "$RUNDIR" "$LISTEN" "$PGPORT" transaction 20 >/dev/null
PGPASSWORD=app pgbench -n -S -M "${MODE:-simple}" -c 10 -j 2 -t "$PER" -h 127.0.0.1 -p "$LISTEN" -U app bench \
  >"$RUNDIR/pgbench.txt" 2>&1
"$BENCH/stop.sh" "$RUNDIR/run.pid" 60 >/dev/null
for _ in $(seq 50); do [ -s "$RUNDIR/callgrind.out" ] && break; sleep 0.1; done
callgrind_annotate --inclusive=yes "$RUNDIR/callgrind.out" 2>/dev/null | head -${TOP:-70} | cut -c1-220
echo "full profile: $RUNDIR/callgrind.out (callgrind_annotate --tree=caller ...)"
