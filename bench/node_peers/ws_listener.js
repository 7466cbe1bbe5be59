'use strict';
// Lean hyco-ws listener for bench/run.py: the WebSocket routes of bench/app.py
// (/echo, /sink, /source), no per-message logging.
//   NODE_PATH=tests/interop/node_modules node ws_listener.js --uri LISTEN_URI --key-name N --key K
// Prints {"ready":true} once listening; exits when stdin closes.

const WebSocket = require('hyco-ws');
const { args, ready, onStdinEnd } = require('./common');

const token = WebSocket.createRelayToken(args.uri, args.keyName, args.key);

const server = WebSocket.createRelayedServer({ server: args.uri, token }, (ws) => {
  // ws 1.1 keeps the rendezvous address, which carries the sender's path suffix (/echo, /sink, /source).
  const route = String(ws.url || '').split('?')[0].split('/').pop();
  let count = 0;
  ws.on('message', (data, flags) => {
    const binary = !!(flags && flags.binary);
    if (route === 'sink') {
      if (!binary && data === 'done') { ws.send(String(count)); count = 0; } else if (binary) count += data.length;
    } else if (route === 'source' && !binary && data.startsWith('go ')) {
      const [, total, size] = data.split(' ');
      const chunk = Buffer.alloc(parseInt(size, 10), 7);
      for (let i = 0; i < Math.floor(parseInt(total, 10) / chunk.length); i++) ws.send(chunk, { binary: true });
      ws.send('done');
    } else {
      ws.send(data, { binary });
    }
  });
  ws.on('error', () => {});
});
server.on('listening', ready);
server.on('error', (e) => process.stderr.write('error: ' + (e && e.message) + '\n'));
onStdinEnd(() => server.close());
