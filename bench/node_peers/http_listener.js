'use strict';
// Lean hyco-https listener for bench/run.py: the routes of bench/app.py, no per-request logging.
// (tests/interop/peers/https_listener.js writes a JSON event with a SHA-256 for every request,
// work the Python listener in the same comparison does not do.)
//   NODE_PATH=tests/interop/node_modules node http_listener.js --uri LISTEN_URI --key-name N --key K
// Prints {"ready":true} once listening; exits when stdin closes.

const https = require('hyco-https');
const { args, ready, onStdinEnd } = require('./common');

const token = https.createRelayToken(args.uri, args.keyName, args.key);
const SMALL = Buffer.from('hello, world\n');
const blobs = new Map();

function blob(size) {
  let data = blobs.get(size);
  if (!data) {
    data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = i & 0xff;
    blobs.set(size, data);
  }
  return data;
}

const server = https.createRelayedServer({ server: args.uri, token }, (req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const u = new URL(req.url, 'http://x');
    const route = u.pathname.split('/').pop();
    if (route === 'small') {
      res.setHeader('Content-Type', 'text/plain');
      res.end(SMALL);
    } else if (route === 'big') {
      res.setHeader('Content-Type', 'application/octet-stream');
      res.end(blob(parseInt(u.searchParams.get('size') || '1000000', 10)));
    } else {
      res.statusCode = 404;
      res.end('no such route\n');
    }
  });
});
server.on('listening', ready);
server.on('error', (e) => process.stderr.write('error: ' + (e && e.message) + '\n'));
server.listen();
onStdinEnd(() => server.close());
