'use strict';
// hyco-ws sender (relayedConnect).
//   node ws_sender.js --uri ws://127.0.0.1:PORT/$hc/hc1?sb-hc-action=connect
//                     --key-name NAME --key KEY [--token-uri URI] [--token-expiry SECONDS]
//                     [--token-in header|query]
// Events: open, message (full payload: text or b64), close, error.
// Commands: {"cmd":"send","text"|"b64"}, {"cmd":"close","code","reason"}; stdin EOF exits.

const WebSocket = require('hyco-ws');
const { parseArgs, emit, describe, onCommands, payloadOf, messageEvent } = require('./common');

const args = parseArgs(process.argv.slice(2));
// --token-expiry -60 mints an expired token (0 would mean the default 3600, index.js:76-79).
const expiry = args.tokenExpiry !== undefined ? parseInt(args.tokenExpiry, 10) : undefined;
const token = WebSocket.createRelayToken(args.tokenUri || args.uri, args.keyName, args.key, expiry);
let uri = args.uri;
let headerToken = token;
if (args.tokenIn === 'query') {
  uri += '&sb-hc-token=' + encodeURIComponent(token);
  headerToken = null;
}

const ws = WebSocket.relayedConnect(uri, headerToken, () => emit({ event: 'open' }));
ws.on('message', (data, flags) => emit(messageEvent(0, data, !!(flags && flags.binary))));
ws.on('close', (code, reason) => emit({ event: 'close', code, reason: reason ? String(reason) : '' }));
ws.on('error', (e) => emit({ event: 'error', message: describe(e) }));

onCommands((command) => {
  if (command.cmd === 'send') {
    const { data, binary } = payloadOf(command);
    ws.send(data, { binary });
  } else if (command.cmd === 'close') {
    ws.close(command.code, command.reason || '');
  } else {
    emit({ event: 'bad-command', message: 'unknown command ' + command.cmd });
  }
}, () => {
  ws.terminate();
  process.exit(0);
});
