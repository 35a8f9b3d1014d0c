#!/usr/bin/env bash
# Speed and memory of `report` across capture shapes the main benchmark (throughput.sh: plain
# TCP, no impairment) does not cover: IPv6, pcapng, nanosecond timestamps, loss, reordering,
# duplicates and retransmissions, connections picked up mid-stream, zlib payloads, error
# statuses, WebSocket with and without permessage-deflate, LZ4 protocol compression.
#
# Each shape is synthesized twice with the same sessions, one capture twice as long as the
# other, and `report` is timed on both. Memory must grow with sessions, not with the capture:
# the "RSS x" column is the long capture's peak RSS over the short one's, and a shape whose
# ratio passes RSS_GROWTH (default 1.3) is flagged GROWS (exit status 1). Shapes with
# compression windows (permessage-deflate: 32 KiB per direction, LZ4: 64 KiB plus 32 KiB of
# slack) are marked "windows" instead: their memory grows with each session's traffic until
# its windows are full (at the synthesizer's rates, a few minutes), which is per session too.
#
# Usage: benches/shapes.sh [CLIENTS] [SECONDS]   (defaults 2000 and 60: the long run is 120 s)
# Environment: BENCH_DIR (default target/bench/shapes), RUNS (default 1, best kept),
# SHAPES (names to run, space-separated; default all), RSS_GROWTH.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-2000}
secs=${2:-60}
runs=${RUNS:-1}
growth=${RSS_GROWTH:-1.3}
dir=${BENCH_DIR:-target/bench/shapes}
mkdir -p "$dir"

cargo build --release --quiet
bin=target/release/msyncdump

declare -A args=(
    [plain]=""
    [ipv6]="--ipv6"
    [pcapng]="--format pcapng"
    [nanos]="--nanos"
    [loss]="--loss 0.02"
    [reorder]="--reorder 0.05"
    [dup-retrans]="--duplicate 0.05 --retransmit 0.05"
    [midstream]="--midstream"
    [zlib]="--zlib 0.3"
    [errors]="--errors 0.1 --unanswered 0.05"
    [websocket]="--websocket"
    [ws-deflate]="--ws-deflate"
    [lz4]="--lz4 bi"
    [web]="--ws-deflate --lz4 bi"
    [web-lossy]="--ws-deflate --lz4 bi --loss 0.01 --reorder 0.02"
)
order=(plain ipv6 pcapng nanos loss reorder dup-retrans midstream zlib errors websocket ws-deflate lz4 web web-lossy)
read -r -a shapes <<<"${SHAPES:-${order[*]}}"

# Best wall time (s) and its peak RSS (KiB) of `report` on $1.
time_report() {
    local best_s="" best_rss=""
    for _ in $(seq "$runs"); do
        /usr/bin/time -o "$dir/time.out" -f '%e %M' "$bin" report "$1" >/dev/null 2>/dev/null
        local s rss
        read -r s rss <"$dir/time.out"
        if [ -z "$best_s" ] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
            best_s=$s best_rss=$rss
        fi
    done
    echo "$best_s $best_rss"
}

printf '%-12s %9s %8s %10s %10s %10s %7s\n' shape "MB (2x)" "s (2x)" "MB/s (2x)" "RSS (1x)" "RSS (2x)" "RSS x"
failed=0
for shape in "${shapes[@]}"; do
    [ -n "${args[$shape]+set}" ] || { echo "unknown shape: $shape" >&2; exit 2; }
    rss=()
    for d in "$secs" $((2 * secs)); do
        cap="$dir/$shape-${clients}c-${d}s.pcap"
        # shellcheck disable=SC2086 # the shape's options are words
        [ -s "$cap" ] || "$bin" synth -w "$cap" --seed 11 --clients "$clients" --duration "$d" \
            --mss 300 --no-truth ${args[$shape]} >/dev/null 2>&1
        read -r s kib <<<"$(time_report "$cap")"
        rss+=("$kib")
        bytes=$(stat -L -c %s "$cap")
    done
    case " ${args[$shape]} " in
        *" --ws-deflate "* | *" --lz4 "*) verdict=windows ;;
        *) verdict=$(awk -v a="${rss[0]}" -v b="${rss[1]}" -v g="$growth" 'BEGIN { print (b > a * g) ? "GROWS" : "" }') ;;
    esac
    [ -z "$verdict" ] || [ "$verdict" = windows ] || failed=1
    awk -v n="$shape" -v b="$bytes" -v s="$s" -v r1="${rss[0]}" -v r2="${rss[1]}" -v v="$verdict" 'BEGIN {
        if (s <= 0) s = 0.01
        printf "%-12s %9.1f %8.2f %10.1f %10.1f %10.1f %7.2f %s\n", n, b / 1e6, s, b / 1e6 / s, r1 / 1024, r2 / 1024, r2 / r1, v
    }'
done
exit "$failed"
