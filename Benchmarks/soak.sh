#!/usr/bin/env bash
# Usage: Benchmarks/soak.sh [SECONDS=120]
# Bounded, loopback-only soak test of the release pooler. Builds it
# (`swift build -c release`), starts a throwaway PostgreSQL 15 and the pooler
# (transaction mode, default_pool_size 10, admin_users = postgres) with the
# shared bench harness, and runs pgbench TPC-B (-c 20 -j 2, runs of at most 5 s,
# alternating -M prepared and -M simple) for SECONDS while it:
#   restarts PostgreSQL twice (pg_ctl restart -m fast), RELOADs a changed
#   default_pool_size, PAUSEs then RESUMEs, KILL_CLIENTs a random client from
#   SHOW CLIENTS, and sends SIGHUP (with the pool size changed back).
# pgbench aborts a client on an error, so it runs in a loop of short runs until
# the time is up; transactions and errors (by kind) are summed over the runs.
# At the end: the pooler must still run, and once the clients are gone and the
# servers closed (RECONNECT + WAIT_CLOSE) its open fds (/proc/PID/fd) must be back
# within 5 of the count before the load. Exit status 1 on a crash or an fd leak.
# Everything is torn down on exit. Run as root (PostgreSQL runs as `postgres`).
# Env: SOAK_PGPORT (35432), SOAK_PORT (36432), SKIP_BUILD=1 (use the existing
# .build/release/pooler), KEEP=1 (keep the temp dir with all logs),
# SOAK_EXTRA_INI (more `key = value` lines for [pgbouncer]).
set -euo pipefail
ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
BENCH="$ROOT/../shared/bench"
# shellcheck source=/dev/null
source "$BENCH/lib.sh"    # run_as, port_open, log, die, PGBIN (sets -euo pipefail)

DURATION=${1:-120}
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 10 ] || die "SECONDS must be a whole number >= 10"
PGPORT_SOAK=${SOAK_PGPORT:-35432}
PORT=${SOAK_PORT:-36432}
POOL_SIZE=10
RUN_SECONDS=5     # short pgbench runs: clients aborted by an event come back soon

for p in "$PGPORT_SOAK" "$PORT"; do port_open 127.0.0.1 "$p" && die "port $p is already in use"; done

TMP=$(mktemp -d /tmp/pooler-soak.XXXXXX)
chmod 755 "$TMP"   # postgres (the OS user) must reach $TMP/pg
PGDIR=$TMP/pg RUNDIR=$TMP/pooler
LOADPID= PID=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$LOADPID" ] && kill -0 "$LOADPID" 2>/dev/null; then
    kill -STOP "$LOADPID" 2>/dev/null || true        # no new pgbench run from here on
    pkill -TERM -P "$LOADPID" 2>/dev/null || true   # its `timeout pgbench` (timeout passes it on)
    kill -TERM "$LOADPID" 2>/dev/null || true; kill -CONT "$LOADPID" 2>/dev/null || true
    wait "$LOADPID" 2>/dev/null || true
  fi
  [ -s "$RUNDIR/run.pid" ] && { "$BENCH/stop.sh" "$RUNDIR/run.pid" 10 >/dev/null 2>&1 || true; }
  [ -d "$PGDIR/data" ] && { "$BENCH/pg-down.sh" "$PGDIR" >/dev/null 2>&1 || true; }
  if [ "${KEEP:-0}" = 1 ]; then log "logs kept in $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build and start -------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "swift build -c release"
  (cd "$ROOT" && swift build -c release >"$TMP/build.log" 2>&1) || { tail -n 30 "$TMP/build.log" >&2; die "build failed"; }
fi
BIN=$ROOT/.build/release/pooler
[ -x "$BIN" ] || die "no $BIN"

"$BENCH/pg-up.sh" "$PGDIR" "$PGPORT_SOAK" >/dev/null 2>"$TMP/pg-up.log" || { cat "$TMP/pg-up.log" >&2; die "pg-up.sh failed"; }
# POOLER_ARGS empty: no --quiet, so the logfile has the full log to grep for errors.
# server_login_retry = 3 (PgBouncer: 15): after a restart's failed logins the pool
# retries soon, so the soak spends its time under load rather than waiting.
POOLER_ARGS= EXTRA_INI=$'admin_users = postgres\nserver_login_retry = 3'"${SOAK_EXTRA_INI:+$'\n'$SOAK_EXTRA_INI}" \
  "$BENCH/pooler-up.sh" "$BIN" "$RUNDIR" "$PORT" "$PGPORT_SOAK" transaction "$POOL_SIZE" >/dev/null 2>"$TMP/pooler-up.log" ||
  { cat "$TMP/pooler-up.log" >&2; die "pooler-up.sh failed"; }
PID=$(<"$RUNDIR/run.pid")
INI=$RUNDIR/pooler.ini

admin() { PGPASSWORD=postgres PGCONNECT_TIMEOUT=5 timeout 30 psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d pgbouncer "$@"; }
alive() { kill -0 "$PID" 2>/dev/null; }
fds() { find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status" 2>/dev/null || echo "?"; }
show_fds_rows() { admin -tA -c 'SHOW FDS' 2>/dev/null | grep -c . || true; }
# count of rows of an admin SHOW whose column COL equals VALUE
count_rows() {  # count_rows SHOWCMD COL VALUE
  admin -A -F $'\t' -c "$1" 2>/dev/null | awk -F '\t' -v col="$2" -v val="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    c && $c == val { n++ } END { print n + 0 }'
}
now() { date +%s; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
EVENTS=$TMP/events.log
event() { echo "$(printf '%4ds' $(( $(now) - T0 ))) $*" | tee -a "$EVENTS" >&2; }

FD_START=$(fds) RSS_START=$(rss_kb) SHOWFDS_START=$(show_fds_rows)
log "pooler pid $PID on 127.0.0.1:$PORT, postgres on $PGPORT_SOAK, $FD_START fds, soak ${DURATION}s"

# --- the load: pgbench runs until the deadline -------------------------------
T0=$(now); END=$((T0 + DURATION))
mkdir -p "$TMP/runs"
load_loop() {
  local n=0 mode left t
  while :; do
    left=$((END - $(now)))
    [ "$left" -ge 2 ] || break
    t=$((left < RUN_SECONDS ? left : RUN_SECONDS))
    n=$((n + 1))
    if [ $((n % 2)) = 1 ]; then mode=prepared; else mode=simple; fi
    PGPASSWORD=app PGCONNECT_TIMEOUT=5 timeout $((t + 60)) \
      pgbench -n -c 20 -j 2 -T "$t" -M "$mode" -h 127.0.0.1 -p "$PORT" -U app bench \
      >"$TMP/runs/$n.$mode.out" 2>"$TMP/runs/$n.$mode.err" || echo "exit $?" >>"$TMP/runs/$n.$mode.err"
    # a run that could not even start (e.g. server down) must not spin
    [ $((END - $(now))) -lt $((left - 1)) ] || sleep 1
  done
}
load_loop &
LOADPID=$!

# --- operator events, spread over the run ------------------------------------
at() {  # at FRACTION_PERCENT: sleep until that point of the run
  local target=$((T0 + DURATION * $1 / 100)) d
  d=$((target - $(now)))
  [ "$d" -le 0 ] || sleep "$d"
}
pg_restart() {
  local t0; t0=$(date +%s.%N)
  if run_as postgres "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 60 -l "$PGDIR/postgres.log" restart >/dev/null 2>&1; then
    event "pg_ctl restart -m fast: done in $(since "$t0")s"
  else
    event "pg_ctl restart -m fast: FAILED"
  fi
}
set_pool_size() { sed -i "s/^default_pool_size = .*/default_pool_size = $1/" "$INI"; }
config_value() { admin -tA -c 'SHOW CONFIG' 2>/dev/null | awk -F '|' -v k="$1" '$1 == k {print $2}'; }
kill_random_client() {
  local ids id
  ids=$(admin -A -F $'\t' -c 'SHOW CLIENTS' 2>/dev/null | awk -F '\t' '
    NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "id") c = i; if ($i == "database") d = i }; next }
    c && d && $d == "bench" { print $c }') || true
  if [ -z "$ids" ]; then event "KILL_CLIENT: no bench client in SHOW CLIENTS"; return; fi
  id=$(shuf -n1 <<<"$ids")
  if admin -c "KILL_CLIENT $id" >/dev/null 2>"$TMP/kill.err"; then
    event "KILL_CLIENT $id (of $(wc -l <<<"$ids") clients): ok"
  else
    event "KILL_CLIENT $id: FAILED: $(head -c 200 "$TMP/kill.err")"
  fi
}
admin_cmd() {  # admin_cmd SQL: run an admin command, log the outcome
  local t0; t0=$(date +%s.%N)
  if admin -c "$1" >/dev/null 2>"$TMP/admin.err"; then
    event "$1: ok ($(since "$t0")s)"
  else
    event "$1: FAILED: $(tr '\n' ' ' <"$TMP/admin.err" | head -c 200)"
  fi
}

at 10; pg_restart
at 25; set_pool_size 6; admin_cmd RELOAD; event "default_pool_size after RELOAD: $(config_value default_pool_size)"
at 40; admin_cmd PAUSE; sleep 2; admin_cmd RESUME
at 50; kill_random_client
at 60; set_pool_size "$POOL_SIZE"; kill -HUP "$PID" && event "SIGHUP (default_pool_size back to $POOL_SIZE)"
       sleep 1; event "default_pool_size after SIGHUP: $(config_value default_pool_size)"
at 70; pg_restart
at 85; kill_random_client
alive || event "pooler pid $PID is GONE"
wait "$LOADPID" || true
LOADPID=

# --- results ------------------------------------------------------------------
ELAPSED=$(( $(now) - T0 ))
total=0 failed=0 runs=0
declare -A mode_tx=()
for f in "$TMP"/runs/*.out; do
  [ -e "$f" ] || continue
  runs=$((runs + 1))
  m=$(basename "$f" .out); m=${m#*.}
  tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$f"); tx=${tx:-0}
  fl=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$f"); fl=${fl:-0}
  total=$((total + tx)); failed=$((failed + fl))
  mode_tx[$m]=$(( ${mode_tx[$m]:-0} + tx ))
done
ERRS=$TMP/errors.txt
cat "$TMP"/runs/*.err 2>/dev/null |
  grep -v -e '^pgbench: error: Run was aborted; the above results are incomplete' -e '^exit [0-9]' |
  grep -iE 'error|fatal|abort|closed|terminat' |
  sed -E 's/^pgbench: (error|fatal): //; s/client [0-9]+/client N/g; s/command [0-9]+/command N/g;
          s/script [0-9]+/script N/g; s/query [0-9]+/query N/g; s/"P_[0-9]+"/"P_N"/g; s/[0-9]{3,}/N/g' |
  sort | uniq -c | sort -rn >"$ERRS" || true
nerr=$(awk '{s += $1} END {print s + 0}' "$ERRS")
nonzero=$(grep -l '^exit' "$TMP"/runs/*.err 2>/dev/null | wc -l)

echo
echo "=== soak: ${ELAPSED}s, $runs pgbench runs (-c 20 -j 2, TPC-B, prepared/simple alternating) ==="
echo "events:"; sed 's/^/  /' "$EVENTS"
echo "transactions done: $total (prepared: ${mode_tx[prepared]:-0}, simple: ${mode_tx[simple]:-0}; $((total / (ELAPSED > 0 ? ELAPSED : 1))) tps average)"
echo "failed transactions reported by pgbench: $failed; runs with non-zero exit: $nonzero/$runs"
echo "errors seen: $nerr"
sed 's/^/  /' "$ERRS" | cut -c1-220
echo "pooler log: $(grep -c . "$RUNDIR/pooler.log" 2>/dev/null || echo 0) lines; by level:"
grep -oE ' (LOG|WARNING|ERROR|FATAL|PANIC|NOISE|DEBUG) ' "$RUNDIR/pooler.log" 2>/dev/null | sort | uniq -c | sed 's/^/  /' || true
echo "pooler warnings by kind:"
grep ' WARNING ' "$RUNDIR/pooler.log" 2>/dev/null |
  sed -E 's/^.* WARNING //; s/^[CS]-0x[0-9a-f]+: [^ ]+ //; s/[0-9]{3,}/N/g' | sort | uniq -c | sort -rn | head -15 | sed 's/^/  /' || true
grep -E 'FATAL|PANIC|Fatal error|fatal error' "$RUNDIR/pooler.log" "$RUNDIR/stdout.log" 2>/dev/null | head -5 | sed 's/^/  /' || true

status=0
if alive; then
  echo "pooler: alive (pid $PID), RSS ${RSS_START} kB -> $(rss_kb) kB"
else
  echo "pooler: CRASHED (pid $PID is gone); last output:"
  tail -n 20 "$RUNDIR/stdout.log" "$RUNDIR/pooler.log" 2>/dev/null | sed 's/^/  /'
  exit 1
fi

# Clients gone (only our own admin connection left), then close the servers.
for _ in $(seq 100); do
  [ "$(count_rows 'SHOW CLIENTS' database bench)" = 0 ] && break
  sleep 0.1
done
FD_IDLE=$(fds)
SERVERS_IDLE=$(admin -tA -c 'SHOW SERVERS' 2>/dev/null | grep -c . || true)
admin_cmd RECONNECT 2>&1; admin_cmd WAIT_CLOSE 2>&1
FD_END=$(fds)
for _ in $(seq 100); do
  FD_END=$(fds)
  [ "$FD_END" -le $((FD_START + 5)) ] && break
  sleep 0.1
done
SHOWFDS_END=$(show_fds_rows)
echo "clients left: $(count_rows 'SHOW CLIENTS' database bench) bench clients"
echo "pooler fds (/proc/$PID/fd): start $FD_START, clients gone $FD_IDLE (with $SERVERS_IDLE server connections), after RECONNECT+WAIT_CLOSE $FD_END"
echo "SHOW FDS rows: start $SHOWFDS_START, end $SHOWFDS_END"
alive || { echo "pooler: CRASHED at the end"; exit 1; }
if [ "$FD_END" -gt $((FD_START + 5)) ]; then
  echo "FAIL: fd leak: $FD_END open fds > start $FD_START + 5"
  ls -l "/proc/$PID/fd" 2>/dev/null | sed 's/^/  /' | tail -n 40
  status=1
fi
[ "$total" -gt 0 ] || { echo "FAIL: no transaction went through"; status=1; }
[ $status = 0 ] && echo "PASS: pooler alive, fds back to $FD_END (start $FD_START)"
exit $status
