// Mock Easemob server for capture sessions: REST token endpoint + MSync over WebSocket.
// Everything listens on 127.0.0.1 only.
//
// Environment:
//   PORT      listening port (default 18080)
//   LZ4       "none" (PROVISION answer selects no protocol compression), "up" (selects
//             COMPRESS_LZ4 with no direction field, i.e. uplink only) or "bi" (COMPRESS_LZ4 and
//             protocol_compress_direction = BI: the server compresses its own
//             messages after the PROVISION answer too)
//   DEFLATE   "1": accept permessage-deflate if the client offers it; otherwise refuse it
//   SOCKJS    "1": serve MSync through SockJS under /ws, as the SDK releases up to 4.8 expect
//             (each message one base64 string in SockJS's JSON frames, over its websocket
//             transport), instead of binary WebSocket messages
//   LOG       path of the JSON-lines log of every MSync message received/sent
//   SCENARIO  "kick": once the client has sent a READ_ACK, a NOTICE of the user's own queue,
//             whose pull answer is a STATISTIC meta USER_LOGIN_ANOTHER_DEVICE (another device
//             logged in as this user), then the server closes the WebSocket
//             "deny": the PROVISION is answered with status UNAUTHORIZED ("token invalid"), and
//             the WebSocket closed (1008) a second later
//             "drop": 0.3 s after acknowledging the third text message the server resets the
//             TCP connection (no close frame); the SDK reconnects and logs in again; the server
//             exits after that second connection closes
//   LIFETIME  seconds before the server exits on its own (default 20); it also exits 0.3 s
//             after the first WebSocket connection closes unless KEEP_RUNNING=1
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');
const Long = require('long');
const { EventEmitter } = require('events');
const { WebSocketServer } = require('ws');
const { Stream } = require('./lz4');

const PORT = Number(process.env.PORT || 18080);
const LZ4 = process.env.LZ4 || 'none';
const DEFLATE = process.env.DEFLATE === '1';
const LOG = process.env.LOG || '';
const LIFETIME = Number(process.env.LIFETIME || 20);
const SCENARIO = process.env.SCENARIO || '';

const APPKEY = 'easemob-demo#capture';
const DOMAIN = 'easemob.com';
const TOKEN = 'YWMtcaptureTOKEN0123456789abcdefABCDEF';

const root = new protobuf.Root().loadSync(path.join(__dirname, '..', '..', 'proto', 'msync.proto'), { keepCase: true });
const T = (n) => root.lookupType('easemob.pb.' + n);
const MSync = T('MSync');
const Provision = T('Provision');
const CommSyncUL = T('CommSyncUL');
const CommSyncDL = T('CommSyncDL');
const CommUnreadUL = T('CommUnreadUL');
const CommUnreadDL = T('CommUnreadDL');
const CommNotice = T('CommNotice');
const Logout = T('Logout');
const Meta = T('Meta');
const MessageBody = T('MessageBody');
const StatisticsBody = T('StatisticsBody');
const MUCBody = T('MUCBody');
const RosterBody = T('RosterBody');
const ConferenceBody = T('ConferenceBody');
const Command = root.lookupEnum('easemob.pb.MSync.Command').values;
const CommandName = Object.fromEntries(Object.entries(Command).map(([k, v]) => [v, k]));
const NS = root.lookupEnum('easemob.pb.Meta.NameSpace').values;

const logStream = LOG ? fs.createWriteStream(LOG, { flags: 'w' }) : null;
let seq = 0;
const t0 = Date.now();
function log(rec) {
  rec = { seq: ++seq, t_ms: Date.now() - t0, ...rec };
  const line = JSON.stringify(rec);
  if (logStream) logStream.write(line + '\n');
  if (process.env.VERBOSE) console.error('[server]', line);
}

// ---------- description of messages for the log (ground truth) ----------
const toObj = (type, msg) => type.toObject(msg, { longs: String, enums: String, bytes: String, defaults: false, arrays: false });

function jidText(j) {
  if (!j) return undefined;
  let s = '';
  if (j.app_key) s += j.app_key + '_';
  s += j.name || '';
  if (j.domain) s += '@' + j.domain;
  if (j.client_resource) s += '/' + j.client_resource;
  return s;
}

function describeMeta(m) {
  const o = toObj(Meta, m);
  if (m.payload && m.payload.length) {
    const body = { [NS.CHAT]: MessageBody, [NS.MUC]: MUCBody, [NS.ROSTER]: RosterBody, [NS.STATISTIC]: StatisticsBody, [NS.CONFERENCE]: ConferenceBody }[m.ns || 0];
    o.payload_hex = Buffer.from(m.payload).toString('hex');
    if (body) {
      try { o.payload = toObj(body, body.decode(m.payload)); o.payload_type = body.name; } catch (e) { o.payload_error = e.message; }
    } else {
      delete o.payload;
      // NOTIFY bodies are JSON text, outside the schema.
      if (m.ns === NS.NOTIFY) o.payload_text = Buffer.from(m.payload).toString('utf8');
    }
  }
  return o;
}

function describePayload(cmd, dir, bytes) {
  // dir: 'c2s' or 's2c'
  let type;
  switch (cmd) {
    case Command.PROVISION: type = Provision; break;
    case Command.UNREAD: type = dir === 'c2s' ? CommUnreadUL : CommUnreadDL; break;
    case Command.NOTICE: type = CommNotice; break;
    case Command.SYNC: type = dir === 'c2s' ? CommSyncUL : CommSyncDL; break;
    case Command.LOGOUT: type = Logout; break;
    default: return { payload_type: null };
  }
  const msg = type.decode(bytes || Buffer.alloc(0));
  const o = toObj(type, msg);
  if (o.auth_token) o.auth_token = '***';
  if (o.password) o.password = '***';
  if (msg.meta) o.meta = describeMeta(msg.meta);
  if (msg.metas && msg.metas.length) o.metas = msg.metas.map(describeMeta);
  return { payload_type: type.name, payload: o };
}

function describe(dir, pb, extra) {
  const env = MSync.decode(pb);
  const e = toObj(MSync, env);
  delete e.payload;
  if (e.auth) e.auth = '***';
  if (env.guid) e.guid_text = jidText(env.guid);
  const hasPayload = Object.prototype.hasOwnProperty.call(env, 'payload') && env.payload != null;
  const cmd = env.command || 0;
  const rec = {
    dir,
    command: CommandName[cmd],
    ...extra,
    pb_len: pb.length,
    envelope: e,
    has_payload: hasPayload,
    payload_len: hasPayload ? env.payload.length : 0,
    ...describePayload(cmd, dir, hasPayload ? env.payload : null),
    pb_hex: Buffer.from(pb).toString('hex'),
  };
  return { env, rec };
}

// ---------- helpers ----------
let idCounter = 0;
function newId() {
  // time-ordered 64-bit id, like the server's: milliseconds << 22 | counter
  const v = (BigInt(Date.now()) << 22n) | BigInt(++idCounter & 0x3fffff);
  return Long.fromString(v.toString(), true);
}
const jid = (name, res) => ({ app_key: APPKEY, name, domain: DOMAIN, ...(res ? { client_resource: res } : {}) });
const OK = { error_code: 0 };

function chatMeta(from, to, text) {
  const body = MessageBody.encode(MessageBody.fromObject({
    type: 'CHAT',
    from: { name: from },
    to: { name: to },
    contents: [{ type: 'TEXT', text }],
    ext: [{ key: 'origin', type: 'STRING', string_value: 'mock-server' }],
  })).finish();
  return { id: newId(), from: jid(from, 'webim_1a2b3c'), to: jid(to), timestamp: Long.fromNumber(Date.now(), true), ns: NS.CHAT, payload: body };
}

// What the server sends a user whose account another device just logged in to.
function kickMeta(user) {
  const body = StatisticsBody.encode(StatisticsBody.fromObject({
    operation: 'USER_LOGIN_ANOTHER_DEVICE',
    reason: JSON.stringify({ device: 'mock-android-device', resource: 'android_5f6e7d' }),
  })).finish();
  return { id: newId(), from: { app_key: APPKEY, domain: DOMAIN }, to: jid(user), timestamp: Long.fromNumber(Date.now(), true), ns: NS.STATISTIC, payload: body };
}

// What the server puts in the acknowledgement of some sends, as the SDK reads it: for a chat
// room join a MUC meta whose status carries the room's information for the user (JSON keyed by
// user name); for an edit a NOTIFY meta whose payload is JSON text describing the edit.
function ackMeta(sent) {
  const now = Date.now();
  if (sent.ns === NS.MUC && sent.payload && sent.payload.length) {
    const b = MUCBody.decode(sent.payload);
    if (b.operation !== MUCBody.Operation.JOIN) return null;
    const user = b.from && b.from.name;
    const info = { [user]: { is_all_mute: false, create_timestamp: now - 86400000, is_in_white_list: false, member_count: 3, mute_duration: 0 } };
    const body = MUCBody.encode(MUCBody.fromObject({
      muc_id: b.muc_id, operation: 'JOIN', from: { name: user }, is_chatroom: true,
      status: { error_code: 'OK', chatroom_info: JSON.stringify(info) },
    })).finish();
    return { id: newId(), from: b.muc_id, to: jid(user), timestamp: Long.fromNumber(now, true), ns: NS.MUC, payload: body };
  }
  if (sent.ns === NS.CHAT && sent.payload && sent.payload.length) {
    const b = MessageBody.decode(sent.payload);
    if (b.type !== MessageBody.Type.EDIT) return null;
    const user = b.from && b.from.name;
    const edit = { edit_msg: { count: 1, operator: user, edit_time: now, sender: user, send_time: now - 1000, chat_type: 'chat' } };
    return { id: newId(), from: { app_key: APPKEY, domain: DOMAIN }, to: jid(user), timestamp: Long.fromNumber(now, true), ns: NS.NOTIFY, payload: Buffer.from(JSON.stringify(edit)) };
  }
  return null;
}

// ---------- HTTP ----------
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let parsed = null;
    try { parsed = body ? JSON.parse(body) : null; } catch (e) { /* not JSON */ }
    const safe = parsed ? { ...parsed } : null;
    if (safe && safe.password) safe.password = '***';
    log({ dir: 'http', method: req.method, url: req.url, body: safe });
    const send = (code, obj) => {
      const s = JSON.stringify(obj);
      res.writeHead(code, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' });
      res.end(s);
    };
    // A browser on another origin (page-server.js) asks first before its JSON POST.
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] || '*',
        'Access-Control-Max-Age': '600',
      });
      return res.end();
    }
    if (req.method === 'POST' && /^\/[^/]+\/[^/]+\/token$/.test(req.url)) {
      return send(200, { access_token: TOKEN, expires_in: 5184000, user: { uuid: 'a1b2c3d4-0000-4000-8000-000000000001', type: 'user', username: parsed && parsed.username, activated: true } });
    }
    return send(404, { error: 'not_found', error_description: 'mock server: ' + req.url });
  });
});

// ---------- MSync over WebSocket ----------
const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: DEFLATE ? { threshold: 0 } : false,
});

if (process.env.SOCKJS !== '1') server.on('upgrade', (req, socket, head) => {
  if (!req.url.split('?')[0].endsWith('/ws')) { socket.destroy(); return; }
  log({ dir: 'ws-upgrade', url: req.url, extensions_offered: req.headers['sec-websocket-extensions'] || null, protocol_offered: req.headers['sec-websocket-protocol'] || null });
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

let connections = 0;
// A SockJS connection dressed as a `ws` one: the session below sends and receives the same
// protobuf bytes, carried as base64 text.
function sockjsSession(conn) {
  const ee = new EventEmitter();
  conn.on('data', (d) => ee.emit('message', Buffer.from(d, 'base64'), true));
  conn.on('close', () => ee.emit('close', 1000, Buffer.alloc(0)));
  return Object.assign(ee, {
    extensions: '',
    send: (buf) => conn.write(Buffer.from(buf).toString('base64')),
    close: (code, reason) => conn.close(code, reason || ''),
  });
}
if (process.env.SOCKJS === '1') {
  const sjs = require('sockjs').createServer({ log: () => {} });
  sjs.on('connection', (conn) => {
    log({ dir: 'ws-upgrade', url: conn.url, transport: `sockjs ${conn.protocol}` });
    wss.emit('connection', sockjsSession(conn));
  });
  sjs.installHandlers(server, { prefix: '/ws' });
}

wss.on('connection', (ws) => {
  const nth = ++connections;
  log({ dir: 'ws-open', extensions: ws.extensions || '' });
  const st = {
    up: null, // lz4 Stream for client->server once enabled
    down: null, // lz4 Stream for server->client once enabled
    user: null,
    textCount: 0,
    noticeSent: false,
    queues: new Map(), // queue name -> pending metas
    c2sIndex: 0, // number of binary WebSocket messages received so far
    s2cIndex: 0, // number of binary WebSocket messages sent so far
  };

  function send(cmd, type, obj, note) {
    const payload = type ? type.encode(type.fromObject(obj)).finish() : undefined;
    const env = { version: 0, command: cmd };
    if (payload) env.payload = payload;
    const pb = Buffer.from(MSync.encode(MSync.fromObject(env)).finish());
    let wire = pb;
    const extra = { lz4: false };
    if (st.down && cmd !== Command.PROVISION) {
      wire = st.down.wrap(pb);
      // decode our own output again (self-check) to log the same details as for the uplink
      const u = st.downCheck.unwrap(wire);
      if (!u.orig.equals(pb)) throw new Error('lz4 self-check failed');
      Object.assign(extra, { lz4: true, lz4_original_len: u.originalLength, lz4_crc32: u.crc.toString(16).padStart(8, '0'), lz4_block_len: u.blockLength, lz4_history_reach: u.historyBytes });
    }
    extra.wire_len = wire.length;
    extra.ws_index = ++st.s2cIndex;
    if (note) extra.note = note;
    const { rec } = describe('s2c', pb, extra);
    log(rec);
    ws.send(wire, { binary: true });
  }

  function answerProvision(env) {
    const p = Provision.decode(env.payload || Buffer.alloc(0));
    st.user = env.guid && env.guid.name;
    if (SCENARIO === 'deny') {
      send(Command.PROVISION, Provision, { status: { error_code: 2, reason: 'token invalid' } });
      // The SDK keeps the socket open after a refused login; the server does not.
      setTimeout(() => ws.close(1008, 'unauthorized'), 1000);
      return;
    }
    const ans = { status: OK, resource: p.resource || 'webim_mock', compress_type: ['COMPRESS_NONE'] };
    if (LZ4 === 'up' || LZ4 === 'bi') ans.protocol_compress_type = ['COMPRESS_LZ4'];
    if (LZ4 === 'bi') ans.protocol_compress_direction = 'BI';
    send(Command.PROVISION, Provision, ans);
    if (LZ4 === 'up' || LZ4 === 'bi') st.up = new Stream();
    if (LZ4 === 'bi') { st.down = new Stream(); st.downCheck = new Stream(); }
    // an offline message from carol waits in her queue
    st.queues.set('carol', [chatMeta('carol', st.user, 'offline hello from carol')]);
  }

  function answerUnread() {
    const unread = [];
    for (const [name, metas] of st.queues) if (metas.length) unread.push({ queue: jid(name), n: metas.length });
    send(Command.UNREAD, CommUnreadDL, { status: OK, unread, timestamp: Long.fromNumber(Date.now(), true) });
  }

  function pushNotice(name, text) {
    st.queues.set(name, [...(st.queues.get(name) || []), chatMeta(name, st.user, text)]);
    send(Command.NOTICE, CommNotice, { queue: jid(name) });
  }

  function answerSync(env) {
    const s = CommSyncUL.decode(env.payload || Buffer.alloc(0));
    if (s.meta) {
      const ack = { status: OK, meta_id: s.meta.id, server_id: newId(), timestamp: Long.fromNumber(Date.now(), true) };
      const extraMeta = ackMeta(s.meta);
      if (extraMeta) ack.metas = [extraMeta];
      send(Command.SYNC, CommSyncDL, ack);
      if (s.meta.ns === NS.CHAT && s.meta.payload) {
        const b = MessageBody.decode(s.meta.payload);
        const isText = b.contents && b.contents.length && (b.contents[0].type || 0) === 0 && b.type === 1;
        if (isText) st.textCount++;
        if (SCENARIO === 'drop' && isText && st.textCount === 3 && nth === 1) {
          setTimeout(() => { log({ dir: 'tcp-reset' }); ws._socket.resetAndDestroy(); }, 300);
        } else if (isText && st.textCount === 3 && !st.noticeSent) {
          st.noticeSent = true;
          setTimeout(() => pushNotice('bob', 'hi alice, bob here'), 200);
        }
        if (SCENARIO === 'kick' && b.type === MessageBody.Type.READ_ACK && !st.kicked) {
          st.kicked = true;
          setTimeout(() => {
            st.queues.set(st.user, [kickMeta(st.user)]);
            send(Command.NOTICE, CommNotice, { queue: jid(st.user) });
          }, 300);
        }
      }
      return;
    }
    if (s.queue) {
      const name = s.queue.name;
      const metas = st.queues.get(name) || [];
      st.queues.set(name, []);
      const ans = { status: OK, metas, queue: s.queue, is_last: true, timestamp: Long.fromNumber(Date.now(), true) };
      if (metas.length) ans.next_key = metas[metas.length - 1].id;
      send(Command.SYNC, CommSyncDL, ans);
      // The kicked session is over: the server closes it (normal closure).
      if (metas.some((m) => m.ns === NS.STATISTIC)) setTimeout(() => ws.close(1000), 300);
      return;
    }
    send(Command.SYNC, CommSyncDL, { status: OK, timestamp: Long.fromNumber(Date.now(), true) }, 'empty SYNC');
  }

  ws.on('message', (data, isBinary) => {
    let wire = Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (!isBinary) { log({ dir: 'c2s', text_frame: wire.toString('utf8') }); return; }
    let pb = wire;
    const extra = { lz4: false, wire_len: wire.length, ws_index: ++st.c2sIndex };
    if (st.up) {
      try {
        const u = st.up.unwrap(wire);
        pb = u.orig;
        Object.assign(extra, { lz4: true, lz4_original_len: u.originalLength, lz4_crc32: u.crc.toString(16).padStart(8, '0'), lz4_block_len: u.blockLength, lz4_history_reach: u.historyBytes });
      } catch (e) {
        // maybe this message was not wrapped (e.g. a new PROVISION); fall back to plain
        extra.lz4_error = e.message;
      }
    }
    let env, rec;
    try {
      ({ env, rec } = describe('c2s', pb, extra));
    } catch (e) {
      log({ dir: 'c2s', ...extra, decode_error: e.message, hex: wire.toString('hex') });
      return;
    }
    log(rec);
    switch (env.command || 0) {
      case Command.PROVISION: return answerProvision(env);
      case Command.UNREAD: return answerUnread();
      case Command.SYNC: return answerSync(env);
      case Command.LOGOUT: return send(Command.LOGOUT, Logout, { status: OK });
      default: return undefined;
    }
  });

  ws.on('close', (code, reason) => {
    log({ dir: 'ws-close', code, reason: reason.toString() });
    // one session per run: exit shortly after the client has gone
    if (process.env.KEEP_RUNNING !== '1' && !(SCENARIO === 'drop' && nth === 1)) setTimeout(shutdown, 300);
  });
  ws.on('error', (e) => log({ dir: 'ws-error', error: e.message }));
});

server.listen(PORT, '127.0.0.1', () => {
  console.error(`[server] listening on 127.0.0.1:${PORT} lz4=${LZ4} deflate=${DEFLATE}`);
});

function shutdown() {
  for (const c of wss.clients) c.terminate();
  server.close();
  if (logStream) logStream.end(() => process.exit(0));
  else process.exit(0);
}
setTimeout(shutdown, LIFETIME * 1000).unref();
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
