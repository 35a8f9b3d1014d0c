#!/usr/bin/env bash
# Whole-program throughput: synthesizes a large capture (default ≥ 500 MB, thousands of
# concurrent sessions, ~150–400-byte segments), then times, from one run each:
#   raw      `msyncdump info`            (iterates the file's records only)
#   summary  `msyncdump dissect`         (summary lines to /dev/null)
#   json     `msyncdump dissect --json`  (NDJSON to /dev/null)
#   report   `msyncdump report` and `report -j 2`, when the build has them
# and prints MB/s, packets/s, the ratio to the raw pass, and peak RSS.
#
# Usage: benches/throughput.sh [SIZE_MB] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-600}
clients=${2:-4000}
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
cap="$dir/bench-${size_mb}mb-${clients}c.pcap"

cargo build --release --quiet
bin=target/release/msyncdump

if [ ! -s "$cap" ]; then
    # Duration grows with the wanted size; the synthesizer's message mix makes roughly
    # 2.5 KB per client-second at the default rates.
    secs=$(( size_mb * 1000 / (clients * 2) + 1 ))
    echo "synthesizing $cap ($clients clients, ${secs}s, MSS 300)…"
    "$bin" synth -w "$cap" --seed 7 --clients "$clients" --duration "$secs" --mss 300 --no-truth
fi
bytes=$(stat -c %s "$cap")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
packets=$("$bin" info "$cap" | awk '/^packets:/ { print $2 }')
echo "capture: $cap, $mb MB, $packets packets"

run() { # name, command...
    local name=$1; shift
    local out
    out=$( { /usr/bin/time -f '%e %M' "$@" >/dev/null 2>/dev/null; } 2>&1 | tail -n 1)
    local secs=${out% *} rss_kb=${out#* }
    awk -v n="$name" -v s="$secs" -v b="$bytes" -v p="$packets" -v r="$rss_kb" -v raw="${raw_secs:-0}" 'BEGIN {
        if (s <= 0) s = 0.001
        ratio = (raw > 0) ? sprintf("%.2fx raw time", s / raw) : "-"
        printf "%-10s %8.2f s  %9.1f MB/s  %12.0f packets/s  peak RSS %7.1f MB  %s\n", n, s, b / 1e6 / s, p / s, r / 1024, ratio
    }'
    last_secs=$secs
}

raw_secs=
run raw "$bin" info "$cap"
raw_secs=$last_secs
run summary "$bin" dissect "$cap"
run json "$bin" dissect --json "$cap"
if "$bin" report --help >/dev/null 2>&1; then
    run report "$bin" report "$cap"
    run report-j2 "$bin" report -j 2 "$cap"
fi
