#!/usr/bin/env bash
# A profile-guided build of msyncdump: builds an instrumented binary, runs it over a training
# set (synthesized TCP, WebSocket and pcapng captures plus the committed samples, through
# `report`, `report --json`, `report -j 2` and `dissect` in its formats), merges the profile
# and builds again with it. The layout and inlining that the profile buys are worth ~18–20 %
# fewer instructions on `report` and `dissect` (benches/RESULTS.md); the output is the same,
# which `--check` verifies byte for byte against the plain release build.
#
# Usage: benches/pgo.sh [--check]
#   prints the path of the optimized binary (target/pgo/release/msyncdump) on stdout.
#   --check also builds the plain release binary and compares the two binaries' output on
#   every committed capture and on the training captures (text and JSON, report and dissect).
# Needs llvm-profdata able to read this rustc's profiles: LLVM_PROFDATA=/path, else the
# newest of llvm-profdata on PATH and /usr/lib/llvm-*/bin (Debian: apt-get install llvm-19).
# Environment: PGO_DIR (default target/pgo) holds the builds, profiles and training captures.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) echo "usage: benches/pgo.sh [--check]" >&2; exit 2 ;;
esac
dir=${PGO_DIR:-target/pgo}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

find_profdata() {
    if [ -n "${LLVM_PROFDATA:-}" ]; then
        echo "$LLVM_PROFDATA"
        return
    fi
    local best= best_v=0 c v
    for c in $(command -v llvm-profdata || true) /usr/lib/llvm-*/bin/llvm-profdata; do
        [ -x "$c" ] || continue
        v=$("$c" --version 2>/dev/null | sed -n 's/.*LLVM version \([0-9]*\).*/\1/p' | head -n 1)
        if [ -n "$v" ] && [ "$v" -gt "$best_v" ]; then
            best=$c best_v=$v
        fi
    done
    [ -n "$best" ] || return 1
    echo "$best"
}
profdata=$(find_profdata) || {
    echo "pgo.sh: no llvm-profdata found; set LLVM_PROFDATA or install one (Debian: apt-get install llvm-19)" >&2
    exit 1
}

raw="$dir/profiles"
rm -rf "$raw"
mkdir -p "$raw"
echo "== instrumented build ($dir/gen)" >&2
RUSTFLAGS="-Cprofile-generate=$raw" cargo build --release --quiet --target-dir "$dir/gen"
gen="$dir/gen/release/msyncdump"
# Build scripts ran instrumented too; their profiles are not the binary's.
rm -f "$raw"/*.profraw

# The training captures are written by the instrumented binary with its profile sent
# elsewhere: synthesis is not what is being optimized. Their seeds are not the benchmarks'
# (throughput.sh and the callgrind figures use seed 7), so those measure captures the profile
# has not seen.
train="$dir/train"
mkdir -p "$train"
synth() { # file, synth flags...
    local out=$1
    shift
    LLVM_PROFILE_FILE="$dir/discard-%p.profraw" "$gen" synth -w "$out" --no-truth "$@" 2>/dev/null
}
echo "== training captures ($train)" >&2
synth "$train/tcp.pcap" --seed 101 --clients 400 --duration 60 --mss 300 \
    --zlib 0.3 --errors 0.05 --unanswered 0.05
synth "$train/lossy.pcap" --seed 102 --clients 100 --duration 60 --mss 400 \
    --loss 0.02 --reorder 0.02 --duplicate 0.02 --retransmit 0.02 --midstream
synth "$train/ws.pcap" --seed 103 --clients 100 --duration 40 --websocket --ws-deflate \
    --ws-fragment 0.2 --ws-ping 0.2 --lz4 bi
synth "$train/v6.pcapng" --seed 104 --clients 50 --duration 30 --format pcapng --ipv6 --nanos
rm -f "$dir"/discard-*.profraw

inputs=("$train"/tcp.pcap "$train"/lossy.pcap "$train"/ws.pcap "$train"/v6.pcapng captures/*.pcap captures/*.pcapng)
# Every way the binary is run, over one input: the commands --check compares.
runs() { # binary, input
    "$1" report --no-color "$2"
    "$1" report --json "$2"
    "$1" report -j 2 --no-color "$2"
    "$1" dissect "$2"
    "$1" dissect --json "$2"
}
echo "== training runs" >&2
for f in "${inputs[@]}"; do
    LLVM_PROFILE_FILE="$raw/%p-%m.profraw" runs "$gen" "$f" >/dev/null 2>&1
done
# The main job on the benchmark's kind of capture weighs most: it runs once more.
LLVM_PROFILE_FILE="$raw/%p-%m.profraw" "$gen" report "$train/tcp.pcap" >/dev/null 2>&1

echo "== merging with $profdata" >&2
if ! "$profdata" merge -o "$dir/msyncdump.profdata" "$raw"/*.profraw; then
    llvm=$(rustc -vV | sed -n 's/^LLVM version: //p')
    echo "pgo.sh: $profdata could not merge the profiles of rustc's LLVM $llvm; set LLVM_PROFDATA to a newer llvm-profdata" >&2
    exit 1
fi

echo "== optimized build ($dir/release)" >&2
# A function changed since the profile was taken is built without it; LLVM would otherwise
# print a warning for each one.
RUSTFLAGS="-Cprofile-use=$dir/msyncdump.profdata -Cllvm-args=-no-pgo-warn-mismatch" \
    cargo build --release --quiet --target-dir "$dir"
bin="$dir/release/msyncdump"

if [ "$check" = 1 ]; then
    echo "== comparing with the plain release build" >&2
    cargo build --release --quiet
    plain=target/release/msyncdump
    for f in "${inputs[@]}"; do
        if ! cmp -s <(runs "$plain" "$f" 2>&1) <(runs "$bin" "$f" 2>&1); then
            echo "pgo.sh: the optimized binary's output differs on $f" >&2
            exit 1
        fi
    done
    echo "pgo.sh: same output on ${#inputs[@]} captures" >&2
fi
echo "$bin"
