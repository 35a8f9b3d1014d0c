// Check a capture against its log: parse the pcap, reassemble each WebSocket connection, decode
// the frames (unmasking, permessage-deflate with context takeover, the MSync LZ4 wrapper) and
// compare every binary message with the protobuf bytes the mock server logged (pb_hex).
//
//   node verify.js ../../captures/websdk-plain.pcap [../../captures/websdk-plain.expected.jsonl]
'use strict';

const fs = require('fs');
const zlib = require('zlib');
const { Stream } = require('./lz4');

function readPcap(file) {
  const b = fs.readFileSync(file);
  const magic = b.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error('not a little-endian pcap file');
  const linktype = b.readUInt32LE(20);
  const pkts = [];
  let off = 24;
  while (off + 16 <= b.length) {
    const incl = b.readUInt32LE(off + 8);
    pkts.push(b.subarray(off + 16, off + 16 + incl));
    off += 16 + incl;
  }
  return { linktype, pkts };
}

function tcpSegments({ linktype, pkts }) {
  const segs = [];
  for (const p of pkts) {
    let ip;
    if (linktype === 1) { if (p.readUInt16BE(12) !== 0x0800) continue; ip = p.subarray(14); }
    else if (linktype === 113) { if (p.readUInt16BE(14) !== 0x0800) continue; ip = p.subarray(16); }
    else if (linktype === 0) { if (p.readUInt32LE(0) !== 2) continue; ip = p.subarray(4); }
    else throw new Error('unsupported linktype ' + linktype);
    if (ip[9] !== 6) continue;
    const ihl = (ip[0] & 15) * 4;
    const total = ip.readUInt16BE(2);
    const tcp = ip.subarray(ihl, total);
    const doff = (tcp[12] >> 4) * 4;
    segs.push({ sport: tcp.readUInt16BE(0), dport: tcp.readUInt16BE(2), seq: tcp.readUInt32BE(4), flags: tcp[13], data: tcp.subarray(doff) });
  }
  return segs;
}

function streams(segs) {
  // key "sport>dport" -> reassembled bytes
  const by = new Map();
  for (const s of segs) {
    const k = `${s.sport}>${s.dport}`;
    if (!by.has(k)) by.set(k, { isn: null, parts: [] });
    const st = by.get(k);
    if (s.flags & 2) { st.isn = s.seq + 1; continue; }
    if (s.data.length) st.parts.push(s);
  }
  const out = new Map();
  for (const [k, st] of by) {
    const parts = st.parts.map((p) => ({ rel: (p.seq - st.isn) >>> 0, data: p.data })).sort((a, b) => a.rel - b.rel);
    const chunks = [];
    let next = 0;
    for (const p of parts) {
      if (p.rel + p.data.length <= next) continue; // retransmission
      if (p.rel > next) throw new Error(`gap in ${k} at ${next}`);
      chunks.push(p.data.subarray(next - p.rel));
      next = p.rel + p.data.length;
    }
    out.set(k, Buffer.concat(chunks));
  }
  return out;
}

function wsFrames(buf) {
  const end = buf.indexOf('\r\n\r\n');
  const head = buf.subarray(0, end).toString('latin1');
  let off = end + 4;
  const frames = [];
  while (off < buf.length) {
    const b0 = buf[off], b1 = buf[off + 1];
    let len = b1 & 127;
    let p = off + 2;
    if (len === 126) { len = buf.readUInt16BE(p); p += 2; } else if (len === 127) { len = Number(buf.readBigUInt64BE(p)); p += 8; }
    let mask = null;
    if (b1 & 128) { mask = buf.subarray(p, p + 4); p += 4; }
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
    frames.push({ fin: !!(b0 & 128), rsv1: !!(b0 & 64), opcode: b0 & 15, masked: !!mask, payload });
    off = p + len;
  }
  return { head, frames };
}

function inflater() {
  const inf = zlib.createInflateRaw({ windowBits: 15 });
  return (data) => new Promise((resolve, reject) => {
    const out = [];
    const onData = (c) => out.push(c);
    inf.on('data', onData);
    inf.once('error', reject);
    inf.write(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]));
    inf.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      inf.removeListener('data', onData);
      inf.removeListener('error', reject);
      resolve(Buffer.concat(out));
    });
  });
}

async function main() {
  const pcapFile = process.argv[2];
  const jsonlFile = process.argv[3] || pcapFile.replace(/\.pcap$/, '.expected.jsonl');
  const expected = fs.readFileSync(jsonlFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const segs = tcpSegments(readPcap(pcapFile));
  const st = streams(segs);
  let failures = 0;
  const fail = (m) => { failures++; console.log('FAIL', m); };
  // the WebSocket connections (a reconnecting SDK makes several), in the order they began:
  // each client->server stream starting with GET .../ws
  const wsKeys = [...st.keys()].filter((k) => /^GET \S*\/ws(\/\S+\/websocket)?[ ?]/.test(st.get(k).subarray(0, 96).toString('latin1')));
  if (!wsKeys.length) throw new Error('no WebSocket upgrade in capture');
  const conns = wsKeys.map((k) => {
    const [cport, sport] = k.split('>');
    const c2s = wsFrames(st.get(k));
    const s2c = wsFrames(st.get(`${sport}>${cport}`) || Buffer.from('\r\n\r\n'));
    const deflate = /sec-websocket-extensions:\s*permessage-deflate/i.test(s2c.head);
    console.log(`${pcapFile}: WebSocket ${cport} -> ${sport}; permessage-deflate ${deflate ? 'negotiated' : 'not negotiated'}`);
    return { c2s, s2c };
  });
  console.log(`${pcapFile}: ${segs.length} TCP segments, ${st.size / 2} connections, ${conns.length} WebSocket`);
  for (const dir of ['c2s', 's2c']) {
    const exp = expected.filter((r) => r.dir === dir && r.pb_hex);
    let i = 0;
    const ops = {};
    let total = 0, masked = 0, compressed = 0, lz4n = 0, sockjs = 0;
    for (const conn of conns) {
      // compression contexts are per connection
      const inflate = inflater();
      const lz4 = new Stream();
      for (const f of conn[dir].frames) {
        total++;
        ops[f.opcode] = (ops[f.opcode] || 0) + 1;
        if (f.masked) masked++;
        if (f.opcode !== 2 && f.opcode !== 1) continue;
        if (!f.fin) fail(`${dir}: fragmented message (not handled)`);
        let data = f.payload;
        if (f.rsv1) { compressed++; data = await inflate(data); }
        // SockJS (releases up to 4.8): a text frame, `a[...]` from the server, `[...]` from
        // the client, each MSync message one base64 string; `o` and `h` carry none.
        let messages = [data];
        if (f.opcode === 1) {
          const text = data.toString('utf8');
          if (text === 'o' || text === 'h') continue;
          messages = JSON.parse(text.startsWith('a') ? text.slice(1) : text).map((b) => Buffer.from(b, 'base64'));
          sockjs += messages.length;
        }
        for (const data of messages) {
          const e = exp[i++];
          if (!e) { fail(`${dir}: unexpected extra message`); continue; }
          if (e.wire_len !== data.length) fail(`${dir} #${i}: wire_len ${data.length} != ${e.wire_len}`);
          let pb = data;
          if (e.lz4) { pb = lz4.unwrap(data).orig; lz4n++; }
          if (pb.toString('hex') !== e.pb_hex) fail(`${dir} #${i} (${e.command}): bytes differ from log`);
        }
      }
    }
    if (i !== exp.length) fail(`${dir}: ${exp.length - i} logged messages missing from capture`);
    console.log(`  ${dir}: ${total} frames (opcodes ${JSON.stringify(ops)}), ${masked} masked, ${compressed} deflated, ${lz4n} LZ4-wrapped, ${sockjs} in SockJS frames; ${i} messages match the log`);
  }
  const close = conns[conns.length - 1].c2s.frames.find((f) => f.opcode === 8);
  if (close) console.log(`  client close frame payload: ${close.payload.length} bytes`);
  console.log(failures ? `${failures} failure(s)` : 'OK');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
