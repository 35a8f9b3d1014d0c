// Serves the page a real browser runs the SDK on (browser.html, the SDK's web build,
// browser-client.js), on a port of its own so that the 600 KB SDK stays out of the capture of
// the mock server's port. 127.0.0.1 only.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const PORT = Number(process.env.PAGE_PORT || 18081);
const files = {
  '/': ['browser.html', 'text/html; charset=utf-8'],
  '/sdk.js': [require.resolve('easemob-websdk/Easemob-chat.js'), 'text/javascript'],
  '/browser-client.js': ['browser-client.js', 'text/javascript; charset=utf-8'],
};
http.createServer((req, res) => {
  const f = files[req.url.split('?')[0]];
  if (!f) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'Content-Type': f[1], 'Cache-Control': 'no-store' });
  fs.createReadStream(path.resolve(__dirname, f[0])).pipe(res);
}).listen(PORT, '127.0.0.1', () => console.error(`[page] http://127.0.0.1:${PORT}/`));
