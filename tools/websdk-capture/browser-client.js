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
  // rich: every kind of message the SDK sends over MSync (see rich() below).
  const RICH = q.get('rich') === '1';
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
    if (RICH) { await rich(); return; }
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
  // Each call of the SDK's public API that goes over MSync (not REST), once. A step that gets
  // no answer within 3 s is logged and passed over, so that one missing answer cannot stall
  // the rest.
  async function rich() {
    const step = async (name, p) => {
      try {
        const r = await Promise.race([p, sleep(3000).then(() => { throw new Error('no answer'); })]);
        say('sent', name, 'serverMsgId', r && r.serverMsgId);
        await sleep(120);
        return r;
      } catch (e) {
        say('failed:', name, e && (e.message || JSON.stringify(e)));
        return null;
      }
    };
    const send = (name, opts) => step(name, conn.send(websdk.message.create(opts)));
    const one = { chatType: 'singleChat', to: 'bob' };
    const first = await send('txt', { ...one, type: 'txt', msg: 'hello bob' });
    const second = await send('txt with ext', { ...one, type: 'txt', msg: 'second message, with ext',
      ext: { color: 'blue', count: 3, urgent: true, ratio: 0.5, nested: { k: 'v' } } });
    // The third text message makes the server announce one from bob (its NOTICE).
    await send('txt online only', { ...one, type: 'txt', msg: 'third message, with unicode: 你好', deliverOnlineOnly: true });
    await send('custom', { ...one, type: 'custom', customEvent: 'gift', customExts: { item: 'rose', qty: 2 } });
    await send('cmd', { ...one, type: 'cmd', action: 'typing' });
    await send('loc', { ...one, type: 'loc', lat: 39.9042, lng: 116.4074, addr: 'Beijing', buildingName: 'Tower A' });
    // Attachments already uploaded: a URL and no file, so nothing goes over REST.
    await send('img', { ...one, type: 'img', url: 'http://127.0.0.1:18080/easemob-demo/capture/chatfiles/img-0001',
      width: 640, height: 480, file_length: 20480 });
    await send('file', { ...one, type: 'file', filename: 'notes.txt', body: { url: 'http://127.0.0.1:18080/easemob-demo/capture/chatfiles/file-0002',
      filename: 'notes.txt', secret: 'file-share-secret', file_length: 1234, type: 'file' } });
    await send('audio', { ...one, type: 'audio', filename: 'voice.amr', length: 3, body: { url: 'http://127.0.0.1:18080/easemob-demo/capture/chatfiles/audio-0003',
      filename: 'voice.amr', secret: 'audio-share-secret', file_length: 4321, length: 3, type: 'audio' } });
    await send('video', { ...one, type: 'video', filename: 'clip.mp4', length: 5, body: { url: 'http://127.0.0.1:18080/easemob-demo/capture/chatfiles/video-0004',
      filename: 'clip.mp4', secret: 'video-share-secret', file_length: 98765, length: 5, type: 'video' } });
    if (first && first.serverMsgId) {
      await step('recall', conn.recallMessage({ mid: first.serverMsgId, to: 'bob', chatType: 'singleChat' }));
    }
    if (second && second.serverMsgId) {
      const edited = websdk.message.create({ ...one, type: 'txt', msg: 'second message, edited' });
      await step('modify', conn.modifyMessage({ messageId: second.serverMsgId, modifiedMessage: edited }));
    }
    for (let i = 0; i < 40 && !gotFromBob; i++) await sleep(100);
    if (gotFromBob) {
      await send('read ack', { ...one, type: 'read', id: gotFromBob.id });
      await send('channel ack', { ...one, type: 'channel' });
    } else {
      say('no message from bob');
    }
    const group = { chatType: 'groupChat', to: '208123456789' };
    await send('group txt', { ...group, type: 'txt', msg: 'hello group', msgConfig: { allowGroupAck: true } });
    await send('group txt to bob only', { ...group, type: 'txt', msg: 'for bob only', receiverList: ['bob'] });
    await send('thread txt', { chatType: 'groupChat', to: '208123456790', type: 'txt', msg: 'in a thread', isChatThread: true });
    const room = '193456789012';
    await step('join chat room', conn.joinChatRoom({ roomId: room }).then((r) => { say('joined', JSON.stringify(r && r.data)); return r; }));
    await send('chat room txt', { chatType: 'chatRoom', to: room, type: 'txt', msg: 'hello room', priority: 'high' });
    await step('leave chat room', conn.leaveChatRoom({ roomId: room }));
    await sleep(STAY);
    conn.close();
    say('done');
  }
  main().catch((e) => say('failed', e && (e.message || JSON.stringify(e))));
})();
