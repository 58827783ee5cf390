#!/usr/bin/env bash
# Usage: Benchmarks/scripts/kernel-profile.sh [CLIENTS=50] [SECONDS=4] NAME:PORT:PID [NAME:PORT:PID ...]
# Where a running pooler's CPU goes, kernel included, under pgbench -S (simple, -j 2) on
# 127.0.0.1:PORT with the bench harness's roles (../shared/bench): `perf record` samples
# the process (software cpu-clock; the hardware counters are not there in this VM) while
# pgbench runs, then prints per target: tps, the share of samples in the kernel and in
# user space, the share in waking the peer a send made readable (sock_def_readable's
# wakeup) and in task switches (finish_task_switch), and the top symbols. Give our
# pooler and PgBouncer (started by ../shared/bench/pooler-up.sh / pgbouncer-up.sh) to
# compare them under the same load. Needs root; apt-installs linux-perf if missing.
set -euo pipefail
CLIENTS=50 SECONDS_=4
if [[ ${1:-} =~ ^[0-9]+$ ]]; then CLIENTS=$1; shift; fi
if [[ ${1:-} =~ ^[0-9]+$ ]]; then SECONDS_=$1; shift; fi
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }
command -v perf >/dev/null || apt-get install -y linux-perf >/dev/null
OUT=$(mktemp -d /tmp/kernel-profile.XXXX)
for target in "$@"; do
    IFS=: read -r name port pid <<<"$target"
    PGPASSWORD=app pgbench -n -S -c "$CLIENTS" -j 2 -T $((SECONDS_ + 3)) -h 127.0.0.1 -p "$port" -U app bench \
        >"$OUT/$name.pgbench" 2>&1 &
    bench=$!
    sleep 1.5 # past the connection phase
    perf record -q -e cpu-clock -F 2999 -g -p "$pid" -o "$OUT/$name.data" -- sleep "$SECONDS_" >/dev/null 2>&1
    wait $bench
    report() { perf report -i "$OUT/$name.data" --no-children --stdio "$@" 2>/dev/null; }
    total=$(report --sort dso -g none | awk '/%/ {s += $1} END {print s}')
    kernel=$(report --sort dso -g none | awk '/\[kernel/ {print $1}')
    wake=$(report --sort sym -g caller,0.5,callee --symbol-filter=_raw_spin_unlock_irqrestore |
        awk '!found && match($0, /[0-9.]+%--sock_def_readable/) {print substr($0, RSTART, RLENGTH - 20); found = 1}')
    switch=$(report --sort sym -g none | awk '/finish_task_switch/ {print $1}')
    printf '== %s (%s clients): %s\n' "$name" "$CLIENTS" "$(grep -h '^tps' "$OUT/$name.pgbench" | cut -d' ' -f1-3)"
    printf '   kernel %s of samples (user space %.2f%%); waking the peer of a send %s%%; task switches %s\n' \
        "$kernel" "$(awk -v t="$total" -v k="${kernel%\%}" 'BEGIN {print t - k}')" "${wake:-?}" "${switch:-0%}"
    report --sort dso,sym -g none | grep '%' | sed -n "1,${TOP:-12}p" | cut -c1-150 | sed 's/^/   /'
done
echo "perf data: $OUT"
