'use strict';
// hyco-ws listener: echoes every message back with the same type.
//   node ws_listener.js --uri ws://127.0.0.1:PORT/$hc/hc1?sb-hc-action=listen
//                       --key-name NAME --key KEY [--token-uri URI] [--token-in header|query] [--echo yes|no]
// Events: listening, error, connection, open, message (size + sha256), close.
// Commands: {"cmd":"send","text"|"b64"}, {"cmd":"close","code","reason"} act on the
// newest connection; stdin EOF closes the listener and exits.

const WebSocket = require('hyco-ws');
const { parseArgs, emit, sha256, describe, onCommands, payloadOf } = require('./common');

const args = parseArgs(process.argv.slice(2));
const token = WebSocket.createRelayToken(args.tokenUri || args.uri, args.keyName, args.key);
let listenUri = args.uri;
let tokenOption = token;
if (args.tokenIn === 'query') {
  listenUri += '&sb-hc-token=' + encodeURIComponent(token);
  // 'token' is mandatory; a function returning '' makes hyco-ws send no header
  // (HybridConnectionWebSocketServer.js:104-115).
  tokenOption = () => '';
}
const echo = args.echo !== 'no';

let nextId = 0;
let newest = null;

const server = WebSocket.createRelayedServer({ server: listenUri, token: tokenOption }, (ws) => {
  const id = ++nextId;
  newest = ws;
  emit({ event: 'connection', id });
  ws.on('open', () => emit({ event: 'open', id, protocol: ws.protocol || null }));
  ws.on('message', (data, flags) => {
    const binary = !!(flags && flags.binary);
    const bytes = binary ? data : Buffer.from(data, 'utf8');
    emit({ event: 'message', id, binary, size: bytes.length, sha256: sha256(bytes) });
    if (echo) ws.send(data, { binary });
  });
  ws.on('close', (code, reason) => emit({ event: 'close', id, code, reason: reason ? String(reason) : '' }));
  ws.on('error', (e) => emit({ event: 'connection-error', id, message: describe(e) }));
});

server.on('listening', () => emit({ event: 'listening' }));
server.on('error', (e) => emit({ event: 'error', message: describe(e) }));

onCommands((command) => {
  if (!newest) {
    emit({ event: 'bad-command', message: 'no connection yet' });
  } else if (command.cmd === 'send') {
    const { data, binary } = payloadOf(command);
    newest.send(data, { binary });
  } else if (command.cmd === 'close') {
    newest.close(command.code, command.reason || '');
  } else {
    emit({ event: 'bad-command', message: 'unknown command ' + command.cmd });
  }
}, () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
});
