#!/bin/sh
# Capture sessions of the official web SDK (easemob-websdk, run in Node) against the mock
# server, on the loopback interface. Needs tcpdump, node, and `npm ci` done in this folder.
#
#   ./capture.sh [scenario...]     scenarios: plain lz4 lz4-bi deflate lz4-deflate (default: all)
#
# Writes ../../captures/websdk-<scenario>.pcap and websdk-<scenario>.expected.jsonl.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/../.." && pwd)/captures
port=${PORT:-18080}
mkdir -p "$out"
cd "$here"

[ -d node_modules ] || npm ci --no-audit --no-fund

run() {
  name=$1 lz4=$2 deflate=$3
  pcap="$out/websdk-$name.pcap"
  jsonl="$out/websdk-$name.expected.jsonl"
  echo "== $name (lz4=$lz4 deflate=$deflate)"
  rm -f "$pcap" "$jsonl"
  timeout 30 tcpdump -i lo -U -s 0 -w "$pcap" "tcp port $port and host 127.0.0.1" 2>/dev/null &
  tcpdump_pid=$!
  sleep 1.5
  PORT=$port LZ4=$lz4 DEFLATE=$deflate LOG="$jsonl" LIFETIME=20 timeout 25 node server.js &
  server_pid=$!
  sleep 1
  PORT=$port TIMEOUT=15 timeout 20 node client.js || echo "client exited with $?"
  wait "$server_pid" || echo "server exited with $?"
  sleep 1
  kill -INT "$tcpdump_pid" 2>/dev/null || true
  wait "$tcpdump_pid" 2>/dev/null || true
  chown "$(id -u):$(id -g)" "$pcap" 2>/dev/null || true
  node verify.js "$pcap" "$jsonl"
  ls -l "$pcap" "$jsonl"
}

[ $# -gt 0 ] || set -- plain lz4 lz4-bi deflate lz4-deflate
for s in "$@"; do
  case $s in
    plain) run plain none 0 ;;
    lz4) run lz4 up 0 ;;
    lz4-bi) run lz4-bi bi 0 ;;
    deflate) run deflate none 1 ;;
    lz4-deflate) run lz4-deflate bi 1 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
