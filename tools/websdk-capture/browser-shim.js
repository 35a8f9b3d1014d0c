// Minimal browser globals so that easemob-websdk runs in Node as its "web" platform.
// Network access is restricted to 127.0.0.1: any other URL fails immediately.
'use strict';
const http = require('http');
const { URL } = require('url');
const WS = require('ws');

function localOnly(u) {
  const p = new URL(u);
  return p.hostname === '127.0.0.1' && (p.protocol === 'http:' || p.protocol === 'ws:');
}

class WebSocket extends WS {
  constructor(url, protocols) {
    if (!localOnly(url)) throw new Error('blocked non-local WebSocket URL ' + url);
    // ws offers "permessage-deflate; client_max_window_bits", as browsers do; threshold 0 makes
    // it compress every message once the extension is accepted, as browsers do (ws's default
    // leaves messages under 1 KiB uncompressed).
    super(url, protocols, { perMessageDeflate: { threshold: 0 } });
  }
  // Browsers drop messages that arrive once close() has been called (HTML spec: "if the
  // ready state is not OPEN, return"); ws would still deliver them.
  emit(ev, ...args) {
    if (ev === 'message' && this.readyState !== WS.OPEN) return false;
    return super.emit(ev, ...args);
  }
}

class XMLHttpRequest {
  constructor() {
    this.readyState = 0; this.status = 0; this.responseText = ''; this.response = '';
    this.timeout = 0; this._headers = {}; this._resHeaders = {}; this._listeners = {};
    this.upload = null;
  }
  addEventListener(ev, fn) { (this._listeners[ev] = this._listeners[ev] || []).push(fn); }
  _emit(ev) {
    const h = this['on' + ev]; if (typeof h === 'function') h.call(this, { target: this });
    for (const fn of this._listeners[ev] || []) fn.call(this, { target: this });
  }
  _state(s) { this.readyState = s; this._emit('readystatechange'); }
  open(method, url) { this._method = method; this._url = url; this._state(1); }
  setRequestHeader(k, v) { this._headers[k] = v; }
  overrideMimeType() {}
  getResponseHeader(k) { return this._resHeaders[k.toLowerCase()] ?? null; }
  getAllResponseHeaders() { return Object.entries(this._resHeaders).map(([k, v]) => `${k}: ${v}`).join('\r\n'); }
  abort() { if (this._req) this._req.destroy(); this._emit('abort'); }
  send(body) {
    if (!localOnly(this._url)) {
      if (process.env.SHIM_DEBUG) console.error('[shim] blocked XHR', this._method, this._url);
      setImmediate(() => { this.status = 0; this._state(4); this._emit('error'); this._emit('loadend'); });
      return;
    }
    const req = http.request(this._url, { method: this._method, headers: this._headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        this.status = res.statusCode; this._resHeaders = res.headers;
        this.responseText = this.response = Buffer.concat(chunks).toString('utf8');
        this._state(4); this._emit('load'); this._emit('loadend');
      });
    });
    this._req = req;
    if (this.timeout) req.setTimeout(this.timeout, () => { req.destroy(); this._emit('timeout'); });
    req.on('error', () => { this.status = 0; this._state(4); this._emit('error'); });
    if (body != null) req.write(body);
    req.end();
  }
}

const store = new Map();
const localStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
  clear: () => store.clear(),
  key: (i) => [...store.keys()][i] ?? null,
  get length() { return store.size; },
};

const noop = () => {};
const g = globalThis;
g.self = g;
g.window = g;
g.WebSocket = WebSocket;
g.XMLHttpRequest = XMLHttpRequest;
g.localStorage = localStorage;
g.sessionStorage = localStorage;
g.addEventListener = noop;
g.removeEventListener = noop;
g.location = { protocol: 'http:', href: 'http://127.0.0.1/', host: '127.0.0.1', hostname: '127.0.0.1' };
g.document = { addEventListener: noop, removeEventListener: noop, hidden: false, visibilityState: 'visible',
  getElementById: () => null, createElement: () => ({ setAttribute: noop, style: {} }) };
try {
  Object.defineProperty(g, 'navigator', { value: { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36', onLine: true, language: 'en-US', platform: 'Linux x86_64' }, configurable: true, writable: true });
} catch (e) { /* ignore */ }

module.exports = { WebSocket, XMLHttpRequest };
