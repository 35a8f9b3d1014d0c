#!/usr/bin/env bash
# Whole-program throughput: synthesizes a large capture (default ≥ 600 MB, thousands of
# concurrent sessions, ~300-byte segments), then times, one run each unless RUNS says more
# (the best run is kept: the machine is shared, so slower runs measure the neighbours):
#   raw      `msyncdump info`            (iterates the file's records only)
#   summary  `msyncdump dissect`         (summary lines to /dev/null)
#   json     `msyncdump dissect --json`  (NDJSON to /dev/null)
#   report   `msyncdump report`, and `report -j 2` when the build has it
# and prints MB/s, packets/s, the ratio to the raw pass, and peak RSS. With PGO=1 it also builds
# the profile-guided binary (benches/pgo.sh) and times the same commands with it, rows marked
# "(pgo)", on the same capture in the same run.
#
# Usage: benches/throughput.sh [SIZE_MB] [CLIENTS]
# Environment: BENCH_DIR (default target/bench), RUNS (default 1), KEEP=1 keeps the capture,
# PGO=1 adds the profile-guided binary.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-600}
clients=${2:-4000}
runs=${RUNS:-1}
dir=${BENCH_DIR:-target/bench}
mkdir -p "$dir"
cap="$dir/bench-${size_mb}mb-${clients}c.pcap"

cargo build --release --quiet
bin=target/release/msyncdump
bins=("$bin")
if [ "${PGO:-0}" = 1 ]; then
    bins+=("$(bash benches/pgo.sh)")
fi
want=$(( size_mb * 1000000 ))

if [ ! -s "$cap" ] || [ "$(stat -L -c %s "$cap")" -lt "$want" ]; then
    # At the synthesizer's default rates a session writes ~0.32 KB per second after a login
    # of ~6.5 KB (MSS 300); the estimate is checked below and the duration scaled if short.
    secs=$(( (want / 1000 - clients * 13 / 2) / (clients * 32 / 100) + 10 ))
    for attempt in 1 2 3; do
        echo "synthesizing $cap ($clients clients, ${secs}s, MSS 300)…"
        "$bin" synth -w "$cap" --seed 7 --clients "$clients" --duration "$secs" --mss 300 --no-truth
        got=$(stat -L -c %s "$cap")
        [ "$got" -ge "$want" ] && break
        # At most doubled per attempt: a capture that stays small for another reason must not
        # turn into a synthesis that fills the disk.
        secs=$(awk -v s="$secs" -v w="$want" -v g="$got" \
            'BEGIN { x = s * w / (g > 0 ? g : 1) * 1.05 + 1; if (x > 2 * s) x = 2 * s; printf "%d", x }')
    done
    [ "$(stat -L -c %s "$cap")" -ge "$want" ] || { echo "could not reach ${size_mb} MB" >&2; exit 1; }
fi
bytes=$(stat -L -c %s "$cap")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
packets=$("$bin" info "$cap" | awk '/^packets:/ { print $2 }')
tally=$("$bin" dissect -q "$cap" 2>&1 >/dev/null | tail -n 1)
echo "capture: $cap, $mb MB, $packets packets"
echo "tally: $tally"

run() { # name, command...
    local name=$1; shift
    local best_s= best_rss=
    for _ in $(seq "$runs"); do
        local out
        # -o: the command's own stderr (the tally) goes to /dev/null, not time's figures.
        /usr/bin/time -o "$dir/time.out" -f '%e %M' "$@" >/dev/null 2>/dev/null
        out=$(tail -n 1 "$dir/time.out")
        local s=${out% *} rss=${out#* }
        if [ -z "$best_s" ] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
            best_s=$s best_rss=$rss
        fi
    done
    awk -v n="$name" -v s="$best_s" -v b="$bytes" -v p="$packets" -v r="$best_rss" -v raw="${raw_secs:-0}" 'BEGIN {
        if (s <= 0) s = 0.01
        ratio = (raw > 0) ? sprintf("%.1fx raw time", s / raw) : "-"
        printf "%-16s %8.2f s  %9.1f MB/s  %12.0f packets/s  peak RSS %7.1f MB  %s\n", n, s, b / 1e6 / s, p / s, r / 1024, ratio
    }'
    last_secs=$best_s
}

raw_secs=
run raw "$bin" info "$cap"
raw_secs=$last_secs
for b in "${bins[@]}"; do
    tag=
    [ "$b" = "$bin" ] || tag=" (pgo)"
    run "summary$tag" "$b" dissect "$cap"
    run "json$tag" "$b" dissect --json "$cap"
    if "$b" report --help >/dev/null 2>&1; then
        run "report$tag" "$b" report "$cap"
        if "$b" report --help | grep -q -- '-j, '; then
            run "report-j2$tag" "$b" report -j 2 "$cap"
        fi
    fi
done
if [ "${KEEP:-0}" != 1 ]; then
    rm -f "$cap"
fi
