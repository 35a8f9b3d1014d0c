#!/bin/bash
# Makes vxlan6-fragmented.pcap: IPv6 fragments written by the Linux kernel. Two network
# namespaces joined by a veth pair of MTU 1280 (IPv6's minimum); sendvxlan.py sends a capture's
# Ethernet frames as VXLAN datagrams from one to the other, and the kernel fragments those over
# the MTU; tcpdump records the receiving side. (A VXLAN device over IPv6 drops what exceeds
# the MTU instead of fragmenting it, hence the datagrams are sent from a socket.)
# Needs root, iproute2, tcpdump, python3 and the msyncdump binary.
#
# Usage: mkfrag6.sh [MSYNCDUMP]
set -euo pipefail
cd "$(dirname "$0")"
bin=${1:-../../target/release/msyncdump}
src=$(mktemp --suffix .pcap)
cleanup() { ip netns del fa 2>/dev/null || true; ip netns del fb 2>/dev/null || true; }
cleanup
trap 'cleanup; rm -f "$src"' EXIT
"$bin" synth -w "$src" --seed 11 --clients 2 --duration 15 --mss 1400
ip netns add fa
ip netns add fb
ip link add va type veth peer name vb
ip link set va netns fa
ip link set vb netns fb
ip -n fa addr add fd00:9::1/64 dev va nodad
ip -n fb addr add fd00:9::2/64 dev vb nodad
for ns in fa fb; do ip -n $ns link set lo up; done
ip -n fa link set va up mtu 1280
ip -n fb link set vb up mtu 1280
sleep 1
ip netns exec fb tcpdump -U -s 0 -i vb -w vxlan6-fragmented.pcap 2>/dev/null &
td=$!
sleep 1
ip netns exec fa python3 sendvxlan.py "$src" fd00:9::1 fd00:9::2
sleep 1
kill -INT $td
wait $td || true
ls -la vxlan6-fragmented.pcap
