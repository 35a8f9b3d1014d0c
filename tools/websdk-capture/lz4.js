// The MSync "protocol compression" wrapper used by the web SDK when the server selects
// COMPRESS_LZ4 at PROVISION:  varint(original length) || CRC-32 (IEEE, big-endian) of the
// original bytes || one raw LZ4 block whose dictionary is the previous 64 KiB of original
// bytes sent in the same direction on the same connection (streaming LZ4).
'use strict';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const WINDOW = 65536;

// Decode one raw LZ4 block; `dict` holds the preceding original bytes (history).
// `info.historyBytes` (if given) receives how far back before the block a match reached (0: none).
function decodeBlock(src, origLen, dict, info) {
  const out = Buffer.alloc(dict.length + origLen);
  dict.copy(out, 0);
  let op = dict.length;
  let ip = 0;
  const end = dict.length + origLen;
  while (ip < src.length) {
    const token = src[ip++];
    let lit = token >> 4;
    if (lit === 15) {
      let b;
      do { b = src[ip++]; lit += b; } while (b === 255);
    }
    if (op + lit > end || ip + lit > src.length) throw new Error('lz4: literal overrun');
    src.copy(out, op, ip, ip + lit);
    op += lit; ip += lit;
    if (ip >= src.length) break; // last sequence: literals only
    const off = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (off === 0 || off > op) throw new Error(`lz4: bad offset ${off} at ${op - dict.length}`);
    if (info && op - off < dict.length) info.historyBytes = Math.max(info.historyBytes || 0, dict.length - (op - off));
    let ml = token & 15;
    if (ml === 15) {
      let b;
      do { b = src[ip++]; ml += b; } while (b === 255);
    }
    ml += 4;
    if (op + ml > end) throw new Error('lz4: match overrun');
    for (let i = 0; i < ml; i++, op++) out[op] = out[op - off];
  }
  if (op !== end) throw new Error(`lz4: decoded ${op - dict.length} bytes, expected ${origLen}`);
  return out.subarray(dict.length);
}

// Greedy LZ4 block encoder that may reference `dict` (preceding bytes, at most 64 KiB).
function encodeBlock(input, dict) {
  const buf = Buffer.concat([dict, input]);
  const base = dict.length;
  const end = buf.length;
  const out = [];
  const HASH = new Map();
  const key = (p) => buf.readUInt32LE(p);
  for (let p = 0; p + 4 <= base; p++) HASH.set(key(p), p);
  const mflimit = end - 12; // a match must start at least 12 bytes before the end
  const matchlimit = end - 5; // the last 5 bytes are literals
  let anchor = base;
  let ip = base;
  const pushLen = (n) => { while (n >= 255) { out.push(255); n -= 255; } out.push(n); };
  while (ip < mflimit) {
    const k = key(ip);
    const cand = HASH.get(k);
    HASH.set(k, ip);
    if (cand === undefined || ip - cand > 65535 || key(cand) !== k) { ip++; continue; }
    let ml = 4;
    while (ip + ml < matchlimit && buf[cand + ml] === buf[ip + ml]) ml++;
    const lit = ip - anchor;
    const mlc = ml - 4;
    out.push(((lit >= 15 ? 15 : lit) << 4) | (mlc >= 15 ? 15 : mlc));
    if (lit >= 15) pushLen(lit - 15);
    for (let i = anchor; i < ip; i++) out.push(buf[i]);
    const off = ip - cand;
    out.push(off & 255, off >> 8);
    if (mlc >= 15) pushLen(mlc - 15);
    for (let p = ip + 1; p < ip + ml && p + 4 <= end; p++) HASH.set(key(p), p);
    ip += ml;
    anchor = ip;
  }
  const lit = end - anchor;
  out.push((lit >= 15 ? 15 : lit) << 4);
  if (lit >= 15) pushLen(lit - 15);
  for (let i = anchor; i < end; i++) out.push(buf[i]);
  return Buffer.from(out);
}

function varint(n) {
  const b = [];
  do { let x = n & 127; n >>>= 7; if (n) x |= 128; b.push(x); } while (n);
  return Buffer.from(b);
}

// One direction of one connection.
class Stream {
  constructor() { this.history = Buffer.alloc(0); }
  _remember(orig) {
    const h = Buffer.concat([this.history, orig]);
    this.history = h.length > WINDOW ? h.subarray(h.length - WINDOW) : h;
  }
  unwrap(wire) {
    let len = 0, shift = 0, i = 0;
    for (;;) {
      const b = wire[i++];
      len |= (b & 127) << shift;
      if (!(b & 128)) break;
      shift += 7;
    }
    len >>>= 0;
    const crc = wire.readUInt32BE(i);
    const block = wire.subarray(i + 4);
    const info = { historyBytes: 0 };
    const orig = decodeBlock(block, len, this.history, info);
    const got = crc32(orig);
    if (got !== crc) throw new Error(`lz4: crc mismatch ${got.toString(16)} != ${crc.toString(16)}`);
    this._remember(orig);
    return { orig: Buffer.from(orig), originalLength: len, crc, blockLength: block.length, historyBytes: info.historyBytes };
  }
  wrap(orig) {
    const block = encodeBlock(orig, this.history);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(orig));
    this._remember(orig);
    return Buffer.concat([varint(orig.length), crc, block]);
  }
}

module.exports = { crc32, decodeBlock, encodeBlock, Stream };
