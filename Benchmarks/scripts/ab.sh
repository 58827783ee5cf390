#!/usr/bin/env bash
# Usage: Benchmarks/scripts/ab.sh [-c CLIENTS] [-t SECONDS] [-r ROUNDS] [-M MODE] NAME:PORT:PID [NAME:PORT:PID ...]
# Alternating A/B runs of pgbench -S (-j 2) against poolers that are already running on
# 127.0.0.1 with the bench harness's roles (../shared/bench/pooler-up.sh,
# pgbouncer-up.sh): round after round, each target in turn, so that drift of this shared
# 2-core box hits every target alike. Per run: tps, the pooler's CPU µs per transaction
# (utime+stime of all its threads), voluntary and involuntary context switches per
# transaction, and write(2) calls per transaction (/proc/PID/io syscw: our eventfd
# wakeups between loops; socket sends do not count there). Then the mean per target.
# Differences under ~5% in tps need several rounds to mean anything here.
set -euo pipefail
CLIENTS=50 SECONDS_=4 ROUNDS=3 MODE=simple
while getopts "c:t:r:M:" option; do
    case $option in
        c) CLIENTS=$OPTARG ;;
        t) SECONDS_=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        M) MODE=$OPTARG ;;
        *) sed -n '2,10p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,10p' "$0"; exit 2; }

counters() { # pid -> "utime stime voluntary involuntary syscw"
    local pid=$1
    read -r utime stime < <(awk '{print $14, $15}' "/proc/$pid/stat")
    read -r voluntary involuntary < <(cat /proc/"$pid"/task/*/status |
        awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v, n}')
    echo "$utime $stime $voluntary $involuntary $(awk '/^syscw/ {print $2}' "/proc/$pid/io")"
}

RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
hz=$(getconf CLK_TCK)
for round in $(seq "$ROUNDS"); do
    for target in "$@"; do
        IFS=: read -r name port pid <<<"$target"
        read -r u0 s0 v0 n0 w0 < <(counters "$pid")
        out=$(PGPASSWORD=app pgbench -n -S -M "$MODE" -c "$CLIENTS" -j 2 -T "$SECONDS_" \
            -h 127.0.0.1 -p "$port" -U app bench 2>&1) || true
        read -r u1 s1 v1 n1 w1 < <(counters "$pid")
        tx=$(awk '/actually processed/ {split($NF, a, "/"); print a[1]}' <<<"$out")
        tps=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$out")
        if [ -z "$tx" ] || [ "$tx" -eq 0 ]; then echo "round $round $name: pgbench failed: $(tail -1 <<<"$out")"; continue; fi
        awk -v r="$round" -v name="$name" -v tps="$tps" -v tx="$tx" -v hz="$hz" \
            -v cpu=$(( (u1 - u0) + (s1 - s0) )) -v v=$((v1 - v0)) -v n=$((n1 - n0)) -v w=$((w1 - w0)) \
            'BEGIN {printf "round %s %-12s tps %7d  cpu %6.2f us/tx  vol-cs %.3f  invol-cs %.3f  writes %.3f /tx\n",
                    r, name, tps, cpu * 1e6 / hz / tx, v / tx, n / tx, w / tx}' | tee -a "$RESULTS"
    done
done
echo "-- means over $ROUNDS rounds, $CLIENTS clients, -M $MODE:"
awk '{k = $3; n[k]++; tps[k] += $5; cpu[k] += $7; v[k] += $10; iv[k] += $12; w[k] += $14; if (!(k in seen)) {seen[k] = 1; order[++count] = k}}
     END {for (i = 1; i <= count; i++) {k = order[i]; printf "%-12s tps %7.0f  cpu %6.2f us/tx  vol-cs %.3f  invol-cs %.3f  writes %.3f /tx\n",
          k, tps[k] / n[k], cpu[k] / n[k], v[k] / n[k], iv[k] / n[k], w[k] / n[k]}}' "$RESULTS"
