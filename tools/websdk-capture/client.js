// Drives the official easemob-websdk (web build) in Node against the mock server:
// log in with user/password, send three text messages to bob, receive bob's message
// (NOTICE + pull), send a read ack for it, log out.
//
// Environment: PORT (default 18080), TIMEOUT seconds (default 15), SDK_DEBUG=1 for SDK logs,
// SDK: the package to drive (default easemob-websdk; easemob-websdk-4.17 and easemob-websdk-4.8
// are older releases, see package.json), SOCKJS=1: give the SDK an http:// address (the
// releases up to 4.8 reach the server through SockJS).
'use strict';

require('./browser-shim');
// Older releases export the SDK as `default`.
const sdkModule = require(process.env.SDK || 'easemob-websdk');
const websdk = sdkModule.connection ? sdkModule : sdkModule.default;

const PORT = Number(process.env.PORT || 18080);
const TIMEOUT = Number(process.env.TIMEOUT || 15);
const say = (...a) => console.error('[client]', ...a);

const hard = setTimeout(() => { say('timeout: giving up'); process.exit(2); }, TIMEOUT * 1000);

if (!process.env.SDK_DEBUG) {
  try { websdk.logger.setLevel(5); } catch (e) { /* ignore */ }
}

const conn = new websdk.connection({
  appKey: 'easemob-demo#capture',
  isHttpDNS: false,
  url: `${process.env.SOCKJS === '1' ? 'http' : 'ws'}://127.0.0.1:${PORT}/ws`,
  apiUrl: `http://127.0.0.1:${PORT}`,
  https: false,
  delivery: true,
  heartBeatWait: 60000,
  autoReconnectNumMax: 1,
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let gotFromBob = null;
let connected = false;
const received = [];

conn.addEventHandler('capture', {
  onConnected: () => { connected = true; say('connected'); },
  onDisconnected: () => say('disconnected'),
  onTextMessage: (m) => {
    say('text message', m.from, '->', m.to, JSON.stringify(m.msg), 'id', m.id);
    received.push(m);
    if (m.from === 'bob') gotFromBob = m;
  },
  onDeliveredMessage: (m) => say('delivered', m.mid || m.id),
  onReadMessage: (m) => say('read', m.mid || m.id),
  onError: (e) => say('error', JSON.stringify(e && { type: e.type, message: e.message })),
});

async function main() {
  say('open');
  await conn.open({ user: 'alice', pwd: 'alice-password' });
  say('opened');
  // open() resolves once the token is there; older releases connect after that.
  for (let i = 0; i < 50 && !connected; i++) await sleep(100);
  await sleep(500);
  const texts = ['hello bob', 'second message', 'third message, with unicode: 你好'];
  for (const t of texts) {
    const msg = websdk.message.create({ type: 'txt', chatType: 'singleChat', to: 'bob', msg: t });
    const r = await conn.send(msg);
    say('sent', JSON.stringify(t), 'serverMsgId', r && r.serverMsgId);
    await sleep(150);
  }
  for (let i = 0; i < 40 && !gotFromBob; i++) await sleep(100);
  if (gotFromBob) {
    const ack = websdk.message.create({ type: 'read', chatType: 'singleChat', to: 'bob', id: gotFromBob.id });
    try { await conn.send(ack); say('read ack sent for', gotFromBob.id); } catch (e) { say('read ack failed', JSON.stringify(e)); }
  } else {
    say('no message from bob');
  }
  await sleep(500);
  say('close');
  conn.close();
  await sleep(700);
  clearTimeout(hard);
  process.exit(0);
}

main().catch((e) => { say('failed', e && (e.message || JSON.stringify(e))); process.exit(1); });
