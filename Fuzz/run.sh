#!/usr/bin/env bash
# Usage: Fuzz/run.sh [SECONDS=600] [TARGET...]
# Builds the libFuzzer harnesses (debug, -sanitize=fuzzer,address) and runs each TARGET
# (default: all) for SECONDS on corpus/<target>/, then minimises that corpus with -merge=1
# into a fresh directory. Crashes land in crashes/<target>/, logs in logs/<target>.log.
# Runs targets one after another; start two run.sh in parallel to use two cores.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
all=(frames startup scram-server scram-client admin session)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

binary() {
    case "$1" in
        frames) echo FuzzFrames ;; startup) echo FuzzStartup ;;
        scram-server) echo FuzzSCRAMServer ;; scram-client) echo FuzzSCRAMClient ;;
        admin) echo FuzzAdmin ;; session) echo FuzzSession ;;
        *) echo "unknown target $1 (one of: ${all[*]})" >&2; exit 2 ;;
    esac
}
maxlen() {
    case "$1" in
        frames) echo 4096 ;; startup) echo 10240 ;; scram-server|scram-client) echo 512 ;;
        admin) echo 400 ;; session) echo 1024 ;;
    esac
}

# One build for all targets, under a lock so two parallel run.sh do not build at once.
exec 9>.build.lock
flock 9
swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 \
    | grep -v "ld.gold: warning: Cannot export local symbol" || true
mkdir -p bin
for t in "${targets[@]}"; do
    b=$(binary "$t")
    test -x ".build/debug/$b" || { echo "build failed: $b missing" >&2; exit 1; }
    cp ".build/debug/$b" "bin/$b.$$" && mv -f "bin/$b.$$" "bin/$b"   # a private copy: rebuilding does not disturb a running fuzzer
done
flock -u 9

export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}   # libFuzzer prints the stack; the Swift backtracer is slow and confuses ASan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}
status=0
for t in "${targets[@]}"; do
    b=$(binary "$t")
    mkdir -p "corpus/$t" "crashes/$t" logs
    echo "== $t: ${seconds}s, -max_len=$(maxlen "$t")"
    set +e
    "bin/$b" "corpus/$t" "seeds/$t" -max_total_time="$seconds" -max_len="$(maxlen "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="crashes/$t/" > "logs/$t.log" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] && { echo "!! $t exited $rc: see logs/$t.log and crashes/$t/"; status=1; }
    grep -E "^#[0-9]+ +DONE|^stat::number_of_executed_units|^Done [0-9]+ runs" "logs/$t.log" | tail -3 || true
    # Minimise: merge into a fresh directory, keep it if small enough.
    fresh="corpus/$t.merge.$$"
    rm -rf "$fresh"; mkdir -p "$fresh"
    "bin/$b" -merge=1 -max_len="$(maxlen "$t")" "$fresh" "corpus/$t" "seeds/$t" > "logs/$t.merge.log" 2>&1 || true
    if [ -n "$(ls -A "$fresh")" ]; then
        # Cap ~200 KB of input bytes (not disk blocks): drop the largest inputs first.
        while [ "$(cat "$fresh"/* | wc -c)" -gt 204800 ]; do
            rm -f "$fresh/$(ls -S "$fresh" | head -1)"
        done
        rm -rf "corpus/$t"; mv "$fresh" "corpus/$t"
    else
        rm -rf "$fresh"
    fi
    echo "   corpus/$t: $(ls "corpus/$t" | wc -l) files, $(cat "corpus/$t"/* 2>/dev/null | wc -c) bytes"
done
exit $status
