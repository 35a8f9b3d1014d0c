// The scenario of client.js, run by a real browser on the page that page-server.js serves: the
// official SDK's web build over the browser's own WebSocket and XMLHttpRequest. Progress goes
// to the console, which capture.sh reads from Chromium's log.
'use strict';
(function () {
  const q = new URLSearchParams(location.search);
  const API = q.get('api') || 'http://127.0.0.1:18080';
  // hb: the SDK's heartbeat timer (ms; it sends a heartbeat once 30 s have passed since the
  // last); stay: how long to stay logged in, idle, before logging out (ms).
  const HB = Number(q.get('hb') || 60000);
  const STAY = Number(q.get('stay') || 500);
  // kick: the server will end the session (another device logged in): wait for that instead
  // of logging out.
  const KICK = q.get('kick') === '1';
  // drop: the server will reset the connection after the third message: wait for the SDK to
  // reconnect, send one more message, and log out.
  const DROP = q.get('drop') === '1';
  // deny: the server will refuse the login (PROVISION status UNAUTHORIZED).
  const DENY = q.get('deny') === '1';
  let disconnected = false;
  let connects = 0;
  const say = (...a) => console.log('[browser]', ...a);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const websdk = self.websdk;
  try { websdk.logger.setLevel(5); } catch (e) { /* ignore */ }
  const conn = new websdk.connection({
    appKey: 'easemob-demo#capture',
    isHttpDNS: false,
    url: API.replace(/^http/, 'ws') + '/ws',
    apiUrl: API,
    https: false,
    delivery: true,
    heartBeatWait: HB,
    autoReconnectNumMax: 1,
  });
  let gotFromBob = null;
  conn.addEventHandler('capture', {
    onConnected: () => { connects++; say('connected'); },
    onDisconnected: () => { disconnected = true; say('disconnected'); },
    onTextMessage: (m) => { say('text message', m.from, '->', m.to, JSON.stringify(m.msg)); if (m.from === 'bob') gotFromBob = m; },
    onError: (e) => say('error', JSON.stringify(e && { type: e.type, message: e.message, data: e.data })),
  });
  async function main() {
    if (DENY) {
      try {
        await conn.open({ user: 'alice', pwd: 'alice-password' });
        say('failed: logged in');
      } catch (e) {
        await sleep(500);
        say('done: login refused:', e && (e.message || JSON.stringify(e)));
      }
      return;
    }
    await conn.open({ user: 'alice', pwd: 'alice-password' });
    say('opened');
    await sleep(500);
    for (const t of ['hello bob', 'second message', 'third message, with unicode: 你好']) {
      const msg = websdk.message.create({ type: 'txt', chatType: 'singleChat', to: 'bob', msg: t });
      const r = await conn.send(msg);
      say('sent', JSON.stringify(t), 'serverMsgId', r && r.serverMsgId);
      await sleep(150);
    }
    if (DROP) {
      for (let i = 0; i < 300 && connects < 2; i++) await sleep(100);
      if (connects < 2) { say('failed: no reconnection'); return; }
      say('reconnected');
      await sleep(500);
      const msg = websdk.message.create({ type: 'txt', chatType: 'singleChat', to: 'bob', msg: 'back again' });
      const r = await conn.send(msg);
      say('sent after reconnecting, serverMsgId', r && r.serverMsgId);
      await sleep(300);
      conn.close();
      say('done');
      return;
    }
    for (let i = 0; i < 40 && !gotFromBob; i++) await sleep(100);
    if (gotFromBob) {
      const ack = websdk.message.create({ type: 'read', chatType: 'singleChat', to: 'bob', id: gotFromBob.id });
      await conn.send(ack);
      say('read ack sent');
    } else {
      say('no message from bob');
    }
    if (KICK) {
      for (let i = 0; i < 50 && !disconnected; i++) await sleep(100);
      say(disconnected ? 'done: disconnected by the server' : 'failed: still connected');
      return;
    }
    await sleep(STAY);
    conn.close();
    say('done');
  }
  main().catch((e) => say('failed', e && (e.message || JSON.stringify(e))));
})();
