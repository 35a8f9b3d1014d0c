#!/usr/bin/env python3
"""Sends each Ethernet frame of a pcap, in order, as one VXLAN datagram (VNI 7, UDP port 4789)
over IPv6. An IPv6 host fragments its own datagrams above the path MTU, so with a small MTU on
the underlay the kernel writes the fragments.

Usage: sendvxlan.py SOURCE_PCAP LOCAL_ADDR REMOTE_ADDR
"""
import socket
import struct
import sys
import time

data = open(sys.argv[1], 'rb').read()
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 4789))
off, n = 24, 0  # past the pcap header (little-endian, microseconds: what synth writes)
while off + 16 <= len(data):
    incl = struct.unpack('<I', data[off + 8:off + 12])[0]
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    s.sendto(struct.pack('>II', 0x08000000, 7 << 8) + frame, (sys.argv[3], 4789))
    n += 1
    time.sleep(0.002)
print(n, 'frames sent')
