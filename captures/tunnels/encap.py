#!/usr/bin/env python3
"""Re-encapsulates the inner Ethernet frames of a VXLAN capture (made by mk.sh) in other
tunnels and link layers, record for record (same timestamps), for what the kernel here cannot
make. usage: encap.py VXLAN_PCAP OUTDIR"""
import struct, sys, os

def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('>%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def ipv4(proto, src, dst, payload, ident=[0x100]):
    ident[0] += 1
    h = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), ident[0] & 0xffff, 0x4000, 64, proto, 0, src, dst)
    return h[:10] + struct.pack('>H', csum(h)) + h[12:] + payload

def ipv6(nh, src, dst, payload):
    return struct.pack('>IHBB16s16s', 0x60000000, len(payload), nh, 64, src, dst) + payload

MAC_A, MAC_B = bytes.fromhex('020000000a01'), bytes.fromhex('020000000a02')
def eth(ethertype, payload, up):
    src, dst = (MAC_A, MAC_B) if up else (MAC_B, MAC_A)
    return dst + src + struct.pack('>H', ethertype) + payload

A4, B4 = bytes([10, 20, 0, 1]), bytes([10, 20, 0, 2])
A6, B6 = bytes.fromhex('fd000000000000000000000000000a01'), bytes.fromhex('fd000000000000000000000000000a02')

def gre(flags, proto, body, key=0x2a, seq=[0]):
    seq[0] += 1
    opt = b''
    if flags & 0x8000:
        opt += b'\0\0\0\0'  # checksum (filled below) and reserved
    if flags & 0x2000:
        opt += struct.pack('>I', key)
    if flags & 0x1000:
        opt += struct.pack('>I', seq[0])
    g = struct.pack('>HH', flags, proto) + opt + body
    if flags & 0x8000:
        g = g[:4] + struct.pack('>H', csum(g)) + g[6:]
    return g

def variants(frame, up):
    """(name, linktype, record bytes) for one inner Ethernet frame."""
    ip = frame[14:]
    et = struct.unpack('>H', frame[12:14])[0]
    s4, d4 = (A4, B4) if up else (B4, A4)
    s6, d6 = (A6, B6) if up else (B6, A6)
    out = []
    # IPv6 inside: IPv6 in IPv4 (6in4, protocol 41) and in IPv6; anything else: no record.
    v6 = et == 0x86dd
    out.append(('sit', 1, eth(0x0800, ipv4(41, s4, d4, ip), up)) if v6 else ('sit', None, None))
    out.append(('ip6in6', 1, eth(0x86dd, ipv6(41, s6, d6, ip), up)) if v6 else ('ip6in6', None, None))
    if et == 0x0800:
        out.append(('ipip', 1, eth(0x0800, ipv4(4, s4, d4, ip), up)))
        out.append(('ip4in6', 1, eth(0x86dd, ipv6(4, s6, d6, ip), up)))
        out.append(('gre', 1, eth(0x0800, ipv4(47, s4, d4, gre(0xb000, 0x0800, ip)), up)))
        out.append(('mpls', 1, eth(0x8847, struct.pack('>II', (1001 << 12) | 64, (2002 << 12) | 0x100 | 64) + ip, up)))
        pppoe = struct.pack('>BBHH', 0x11, 0, 0x1234, len(ip) + 2) + struct.pack('>H', 0x0021) + ip
        out.append(('pppoe', 1, eth(0x8864, pppoe, up)))
        out.append(('ppp', 9, b'\xff\x03\x00\x21' + ip))
        out.append(('chdlc', 104, b'\x0f\x00\x08\x00' + ip))
    else:
        # Not IPv4 (ARP, the kernel's IPv6 neighbour discovery): written as below.
        for n in ('ipip', 'ip4in6', 'gre', 'mpls', 'pppoe', 'ppp', 'chdlc'):
            out.append((n, None, None))
    out.append(('gretap', 1, eth(0x0800, ipv4(47, s4, d4, gre(0x2000, 0x6558, frame)), up)))
    erspan2 = struct.pack('>II', (1 << 28) | (0 << 16) | 5, 0)  # ver 1 (type II), vlan 0, session 5
    out.append(('erspan2', 1, eth(0x0800, ipv4(47, s4, d4, gre(0x1000, 0x88be, erspan2 + frame)), up)))
    erspan3 = struct.pack('>III', (2 << 28) | 6, 0x12345678, (7 << 4) | 1) + b'\x01' * 8  # ver 2, O bit, subheader
    out.append(('erspan3', 1, eth(0x0800, ipv4(47, s4, d4, gre(0x1000, 0x22eb, erspan3 + frame)), up)))
    opts = struct.pack('>HBB', 0x0101, 0x80, 1) + b'\xaa\xbb\xcc\xdd'  # one 4-byte option
    gnv = struct.pack('>BBHI', 2, 0, 0x6558, 9 << 8) + opts + frame
    udp = struct.pack('>HHHH', 40000 + (1 if up else 2), 6081, 8 + len(gnv), 0) + gnv
    out.append(('geneve', 1, eth(0x0800, ipv4(17, s4, d4, udp), up)))
    pktap = struct.pack('<III', 108, 1, 1) + b'\0' * 96  # length 108, a packet, DLT_EN10MB
    out.append(('pktap', 258, pktap + frame))
    return out

src, outdir = sys.argv[1], sys.argv[2]
d = open(src, 'rb').read()
assert struct.unpack('<I', d[:4])[0] == 0xa1b2c3d4 and struct.unpack('<I', d[20:24])[0] == 1
pos, recs = 24, []
while pos + 16 <= len(d):
    sec, usec, cl, ol = struct.unpack('<IIII', d[pos:pos + 16])
    f = d[pos + 16:pos + 16 + cl]
    pos += 16 + cl
    # outer Ethernet + IPv4 or IPv6 + UDP + VXLAN
    if f[12:14] == b'\x86\xdd':
        inner = f[14 + 40 + 16:]
        up = f[14 + 8:14 + 24] == bytes.fromhex('fd000009000000000000000000000001')
    else:
        ihl = (f[14] & 15) * 4
        inner = f[14 + ihl + 16:]
        up = f[14 + 12:14 + 16] == bytes([10, 9, 0, 1])
    recs.append((sec, usec, inner, up))
files = {}
for sec, usec, inner, up in recs:
    for name, link, rec in variants(inner, up):
        if link is None:
            # No IP to carry: an empty record in the Ethernet variants keeps the numbering.
            link, rec = None, None
        files.setdefault(name, []).append((sec, usec, link, rec, inner))
for name, rs in files.items():
    link = next(l for _, _, l, _, _ in rs if l is not None)
    with open(os.path.join(outdir, f'{name}.pcap'), 'wb') as o:
        o.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 262144, link))
        for sec, usec, l, rec, inner in rs:
            if rec is None:
                # the ARP frame itself, under the variant's link layer when it has Ethernet
                rec = inner if link == 1 else (b'\xff\x03\x80\x21' if link == 9 else b'\x0f\x00\x08\x06') + b'\0' * 28
            o.write(struct.pack('<IIII', sec, usec, len(rec), len(rec)) + rec)
    print(name, len(rs))
