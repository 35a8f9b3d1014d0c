#!/usr/bin/env bash
# nflog.pcap: seed.pcap's two connections replayed over loopback TCP (replay.py) while an
# nftables rule logs every segment to NFLOG group 5 and tcpdump reads the group
# (link type NFLOG, 239). Needs root, nft and tcpdump.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-nflog.pcap}
nft add table inet msyncdump_nflog
trap 'nft delete table inet msyncdump_nflog' EXIT
nft add chain inet msyncdump_nflog out '{ type filter hook output priority 0; }'
nft add rule inet msyncdump_nflog out tcp dport 6717 log group 5
nft add rule inet msyncdump_nflog out tcp sport 6717 log group 5
tcpdump -i nflog:5 -U -w "$out" &
dump=$!
sleep 1.5
python3 replay.py server ../seed.pcap 127.0.0.1 6717 &
sleep 0.5
python3 replay.py client ../seed.pcap 127.0.0.1 6717
sleep 1
kill -INT $dump
wait $dump || true
