#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, one after the other, on the stable
# toolchain (-s none), and prints executions and crashes per target. Exit status 1 when any
# target crashed, timed out or ran out of memory; its input is kept in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh 60                   # every target, 60 s each
#   fuzz/run.sh 600 pipeline splitter  # only these targets
#   FUZZ_RUNS=10000000 fuzz/run.sh 3600  # each target until 10 M executions, at most an hour
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
runs="${FUZZ_RUNS:--1}"
shift || true
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < targets.txt; fi

[ -d corpus/capture_reader ] || ./seed.sh
mkdir -p artifacts; cargo fuzz build -s none >artifacts/build.log 2>&1 || { cat artifacts/build.log; exit 2; }

failed=0
printf '%-16s %14s %8s %s\n' target executions crashes status
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    before=$(find "artifacts/$t" -type f ! -name '*.log' | wc -l)
    cargo fuzz run "$t" -s none "corpus/$t" -- \
        -max_total_time="$secs" -runs="$runs" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    after=$(find "artifacts/$t" -type f ! -name '*.log' | wc -l)
    crashes=$((after - before))
    status=ok
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        status="FAILED (exit $rc, see fuzz/$log)"
        failed=1
    fi
    printf '%-16s %14s %8s %s\n' "$t" "${execs:-?}" "$crashes" "$status"
done
exit "$failed"
