#!/usr/bin/env python3
"""Replays the TCP payloads of a pcap's connections over real sockets, one connection at a time.
usage: replay.py server|client PCAP HOST PORT"""
import socket, struct, sys, time

def chunks(path):
    d = open(path, 'rb').read()
    magic = struct.unpack('<I', d[:4])[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), 'pcap (little-endian) only'
    link = struct.unpack('<I', d[20:24])[0]
    assert link == 1
    pos = 24
    conns = {}  # key -> list of (client_to_server, bytes)
    order = []
    seen = {}
    while pos + 16 <= len(d):
        _, _, cl, _ = struct.unpack('<IIII', d[pos:pos + 16])
        f = d[pos + 16:pos + 16 + cl]
        pos += 16 + cl
        et = struct.unpack('>H', f[12:14])[0]
        if et == 0x0800:
            ihl = (f[14] & 15) * 4
            if f[14 + 9] != 6:
                continue
            src, dst = f[26:30], f[30:34]
            tcp = f[14 + ihl:14 + struct.unpack('>H', f[16:18])[0]]
        elif et == 0x86dd:
            if f[14 + 6] != 6:
                continue
            src, dst = f[22:38], f[38:54]
            tcp = f[54:54 + struct.unpack('>H', f[18:20])[0]]
        else:
            continue
        sp, dp, seq = struct.unpack('>HHI', tcp[:8])
        flags = tcp[13]
        payload = tcp[(tcp[12] >> 4) * 4:]
        a, b = (src, sp), (dst, dp)
        key = (min(a, b), max(a, b))
        if key not in conns:
            conns[key] = []
            order.append(key)
            # the client is whoever sends the SYN, else the higher port
            seen[key] = a if (flags & 0x12) == 0x02 else (a if sp > dp else b)
        if not payload:
            continue
        # drop retransmitted bytes: keep track of next expected seq per direction
        nxt = conns.setdefault(('next', key, a), [None])
        if nxt[0] is not None:
            skip = (nxt[0] - seq) & 0xffffffff
            if skip >= 0x80000000:
                skip = 0
            payload = payload[skip:] if skip < len(payload) else b''
            seq = (seq + skip) & 0xffffffff
        if not payload:
            continue
        nxt[0] = (seq + len(payload)) & 0xffffffff
        up = a == seen[key]
        lst = conns[key]
        if lst and lst[-1][0] == up:
            lst[-1] = (up, lst[-1][1] + payload)
        else:
            lst.append((up, payload))
    return [conns[k] for k in order]

def recv_exact(s, n):
    got = b''
    while len(got) < n:
        x = s.recv(n - len(got))
        if not x:
            raise SystemExit('peer closed early')
        got += x

def play(s, steps, mine_is_up):
    for up, data in steps:
        if up == mine_is_up:
            s.sendall(data)
        else:
            recv_exact(s, len(data))
        time.sleep(0.01)

role, path, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sessions = chunks(path)
fam = socket.AF_INET6 if ':' in host else socket.AF_INET
if role == 'server':
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(8)
    for steps in sessions:
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        play(s, steps, False)
        s.recv(1)  # wait for the client's FIN
        s.close()
else:
    for steps in sessions:
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        play(s, steps, True)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
        time.sleep(0.05)
print(role, 'done', len(sessions), 'connections', file=sys.stderr)
