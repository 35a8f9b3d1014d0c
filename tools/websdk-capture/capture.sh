#!/bin/sh
# Capture sessions of the official web SDK (easemob-websdk) against the mock server, on the
# loopback interface: run in Node (client.js), or in a real browser, headless Chromium
# (browser-client.js on the page of page-server.js). Needs tcpdump, node, `npm ci` done in this
# folder, and for the chromium-* scenarios Chromium (`apt-get install chromium`; CHROMIUM names
# another binary).
#
#   ./capture.sh [scenario...]     scenarios: plain lz4 lz4-bi deflate lz4-deflate
#                                  v4.17-lz4-unoffered v4.8-sockjs
#                                  chromium-plain chromium-lz4-deflate chromium-heartbeat
#                                  chromium-kicked chromium-reconnect chromium-login-refused
#                                  chromium-lossy chromium-rich
#                                  (default: all; chromium-lossy needs root and nft)
#
# Writes ../../captures/websdk-<scenario>.pcap and websdk-<scenario>.expected.jsonl.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/../.." && pwd)/captures
port=${PORT:-18080}
mkdir -p "$out"
cd "$here"

[ -d node_modules ] || npm ci --no-audit --no-fund

# name, LZ4 mode, deflate, and optionally the SDK package (package.json) and 1 for SockJS.
run() {
  name=$1 lz4=$2 deflate=$3 sdk=${4:-easemob-websdk} sockjs=${5:-0}
  pcap="$out/websdk-$name.pcap"
  jsonl="$out/websdk-$name.expected.jsonl"
  echo "== $name ($sdk, lz4=$lz4 deflate=$deflate sockjs=$sockjs)"
  rm -f "$pcap" "$jsonl"
  timeout 30 tcpdump -i lo -U -s 0 -w "$pcap" "tcp port $port and host 127.0.0.1" 2>/dev/null &
  tcpdump_pid=$!
  sleep 1.5
  PORT=$port LZ4=$lz4 DEFLATE=$deflate SOCKJS=$sockjs LOG="$jsonl" LIFETIME=20 timeout 25 \
    node server.js &
  server_pid=$!
  sleep 1
  PORT=$port SDK=$sdk SOCKJS=$sockjs TIMEOUT=15 timeout 20 node client.js ||
    echo "client exited with $?"
  wait "$server_pid" || echo "server exited with $?"
  sleep 1
  kill -INT "$tcpdump_pid" 2>/dev/null || true
  wait "$tcpdump_pid" 2>/dev/null || true
  chown "$(id -u):$(id -g)" "$pcap" 2>/dev/null || true
  node verify.js "$pcap" "$jsonl"
  ls -l "$pcap" "$jsonl"
}

# The same session driven by Chromium: its own WebSocket (handshake headers, masking,
# permessage-deflate) and XMLHttpRequest (with a CORS preflight: the page is served from
# another port, so that the SDK's 600 KB script stays out of the capture).
run_browser() {
  name=$1 lz4=$2 deflate=$3 query=${4:-} secs=${5:-30} scenario=${6:-}
  pcap="$out/websdk-$name.pcap"
  jsonl="$out/websdk-$name.expected.jsonl"
  page_port=$((port + 1))
  profile=$(mktemp -d)
  echo "== $name (Chromium, lz4=$lz4 deflate=$deflate)"
  rm -f "$pcap" "$jsonl"
  timeout $((secs + 10)) tcpdump -i lo -U -s 0 -w "$pcap" "tcp port $port and host 127.0.0.1" 2>/dev/null &
  tcpdump_pid=$!
  sleep 1.5
  PORT=$port LZ4=$lz4 DEFLATE=$deflate SCENARIO=$scenario LOG="$jsonl" LIFETIME=$secs \
    timeout $((secs + 5)) node server.js &
  server_pid=$!
  PAGE_PORT=$page_port timeout $((secs + 5)) node page-server.js &
  page_pid=$!
  sleep 1
  timeout "$secs" "${CHROMIUM:-chromium}" --headless=new --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --enable-logging=stderr --v=0 \
    "http://127.0.0.1:$page_port/?api=http://127.0.0.1:$port$query" 2>"$profile/chrome.log" &
  chrome_pid=$!
  # The server exits shortly after the SDK's WebSocket closes.
  wait "$server_pid" || echo "server exited with $?"
  grep -o '"\[browser\][^"]*' "$profile/chrome.log" || true
  grep -q '\[browser\] done' "$profile/chrome.log" || echo "the page did not finish its session" >&2
  kill "$chrome_pid" "$page_pid" 2>/dev/null || true
  wait "$chrome_pid" "$page_pid" 2>/dev/null || true
  sleep 1
  kill -INT "$tcpdump_pid" 2>/dev/null || true
  wait "$tcpdump_pid" 2>/dev/null || true
  rm -rf "$profile"
  chown "$(id -u):$(id -g)" "$pcap" 2>/dev/null || true
  node verify.js "$pcap" "$jsonl"
  ls -l "$pcap" "$jsonl"
}

# run_browser's session over a lossy path (nftables, on loopback): packets dropped before the
# capture point (6 % at random in the output hook: the capture misses them and sees the
# kernel's retransmissions arrive after later segments), and after it (every 15th packet
# with PSH in the input hook: the capture sees it, the peer does not, so the capture holds a
# retransmitted copy). Needs root and nft (Debian: nftables); DROP sets the random share.
run_lossy() {
  table=msd_websdk_capture
  nft delete table inet $table 2>/dev/null || true
  nft -f - <<EOF
table inet $table {
  chain out {
    type filter hook output priority 0;
    tcp dport $port numgen random mod 100 < ${DROP:-6} counter drop
    tcp sport $port numgen random mod 100 < ${DROP:-6} counter drop
  }
  chain in {
    type filter hook input priority 0;
    tcp dport $port tcp flags & psh == psh numgen inc mod 15 == 0 counter drop
    tcp sport $port tcp flags & psh == psh numgen inc mod 15 == 0 counter drop
  }
}
EOF
  run_browser "$@" || true
  nft list table inet $table | grep -o 'counter packets [0-9]*' |
    awk '{ n += $3 } END { print "dropped by nftables: " n " packets" }'
  nft delete table inet $table
}

[ $# -gt 0 ] || set -- plain lz4 lz4-bi deflate lz4-deflate v4.17-lz4-unoffered v4.8-sockjs \
  chromium-plain chromium-lz4-deflate \
  chromium-heartbeat chromium-kicked chromium-reconnect chromium-login-refused chromium-lossy \
  chromium-rich
for s in "$@"; do
  case $s in
    plain) run plain none 0 ;;
    lz4) run lz4 up 0 ;;
    lz4-bi) run lz4-bi bi 0 ;;
    deflate) run deflate none 1 ;;
    lz4-deflate) run lz4-deflate bi 1 ;;
    # Older releases: 4.17.0 offers no LZ4, which this server selects anyway; 4.8.1 speaks
    # SockJS.
    v4.17-lz4-unoffered) run v4.17-lz4-unoffered bi 1 easemob-websdk-4.17 ;;
    v4.8-sockjs) run v4.8-sockjs none 0 easemob-websdk-4.8 1 ;;
    chromium-plain) run_browser chromium-plain none 0 ;;
    chromium-lz4-deflate) run_browser chromium-lz4-deflate bi 1 ;;
    # Logged in for ~77 s: two of the SDK's own heartbeats (an UNREAD once 30 s have passed).
    chromium-heartbeat) run_browser chromium-heartbeat none 0 "&hb=5000&stay=76000" 110 ;;
    # Another device logs in as the user: the server's STATISTIC meta, and the SDK's reaction.
    chromium-kicked) run_browser chromium-kicked none 0 "&kick=1" 30 kick ;;
    # The server resets the connection mid-session: the SDK reconnects and logs in again.
    chromium-reconnect) run_browser chromium-reconnect none 0 "&drop=1" 60 drop ;;
    # The server refuses the login (PROVISION answered UNAUTHORIZED): the SDK gives up.
    chromium-login-refused) run_browser chromium-login-refused none 0 "&deny=1" 30 deny ;;
    # LZ4 and deflate over a lossy path: the kernel's retransmissions, out of order.
    chromium-lossy) run_lossy chromium-lossy bi 1 "" 60 ;;
    # Every kind of message the SDK sends over MSync: single chat (text, ext, custom, command,
    # location, image, file, audio and video by URL, recall, edit, acks), group, thread, chat room.
    chromium-rich) run_browser chromium-rich none 0 "&rich=1" 45 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
