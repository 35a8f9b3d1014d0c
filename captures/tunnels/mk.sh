#!/bin/bash
# Makes a VXLAN capture with the Linux kernel: two network namespaces joined by a veth pair
# (the underlay), a VXLAN device in each, and replay.py playing a capture's MSync connections
# over real TCP sockets through the tunnel, while tcpdump records the underlay.
# Needs root, iproute2 and tcpdump.
#
# Usage: mk.sh NAME UNDERLAY INNER PORT SOURCE_PCAP
#   UNDERLAY, INNER: 4 or 6 (IP version of the underlay and of the tunnelled traffic)
#   PORT: the VXLAN UDP port (4789 is IANA's, 8472 the kernel's default)
# Environment: UNDERLAY_MTU, set on the underlay after the tunnel took its MTU from it, makes
# the kernel fragment the underlay's packets.
# vxlan.pcap:  mk.sh vxlan 4 4 4789 ../seed.pcap
# vxlan6.pcap: mk.sh vxlan6 6 6 8472 ../seed.pcap
set -euo pipefail
cd "$(dirname "$0")"
name=$1 ul=$2 inner=$3 port=$4 src=$5
if [ "$ul" = 4 ]; then L1=10.9.0.1 L2=10.9.0.2 LP=24; else L1=fd00:9::1 L2=fd00:9::2 LP=64; fi
if [ "$inner" = 4 ]; then I1=192.168.77.1 I2=192.168.77.2 IP=24; else I1=fd77::1 I2=fd77::2 IP=64; fi
cleanup() { ip netns del ta 2>/dev/null || true; ip netns del tb 2>/dev/null || true; }
cleanup
trap cleanup EXIT
ip netns add ta
ip netns add tb
ip link add va type veth peer name vb
ip link set va netns ta
ip link set vb netns tb
ip -n ta addr add $L1/$LP dev va nodad 2>/dev/null || ip -n ta addr add $L1/$LP dev va
ip -n tb addr add $L2/$LP dev vb nodad 2>/dev/null || ip -n tb addr add $L2/$LP dev vb
for ns in ta tb; do ip -n $ns link set lo up; done
ip -n ta link set va up
ip -n tb link set vb up
ip -n ta link add vx0 type vxlan id 7 local $L1 remote $L2 dstport "$port" dev va
ip -n tb link add vx0 type vxlan id 7 local $L2 remote $L1 dstport "$port" dev vb
ip -n ta addr add $I1/$IP dev vx0 nodad 2>/dev/null || ip -n ta addr add $I1/$IP dev vx0
ip -n tb addr add $I2/$IP dev vx0 nodad 2>/dev/null || ip -n tb addr add $I2/$IP dev vx0
ip -n ta link set vx0 up
ip -n tb link set vx0 up
if [ -n "${UNDERLAY_MTU:-}" ]; then
    ip -n ta link set va mtu "$UNDERLAY_MTU"
    ip -n tb link set vb mtu "$UNDERLAY_MTU"
fi
sleep 1
ip netns exec tb tcpdump -U -s 0 -i vb -w "$name.pcap" 2>/dev/null &
td=$!
sleep 1
ip netns exec tb python3 replay.py server "$src" $I2 6717 &
sv=$!
sleep 0.5
ip netns exec ta python3 replay.py client "$src" $I2 6717
wait $sv
sleep 1
kill -INT $td
wait $td || true
ls -la "$name.pcap"
