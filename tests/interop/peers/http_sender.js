'use strict';
// A plain Node HTTP sender that signs with hyco-https's createRelayToken, as the
// package's samples do (https.get + ServiceBusAuthorization), but over http:// to
// the emulator. Requests run one after another.
//   node http_sender.js --ns 127.0.0.1:PORT --hc hc1 --key-name NAME --key KEY [--token-uri URI]
//   stdin: one JSON array of {method, target ("/echo?x=1", after /{hc}), headers,
//          b64 (body), tokenIn ("header"|"query"|"none"), tokenUri (what to sign for),
//          expirationSeconds (negative: an expired token), key (another key),
//          fresh (true: its own connection instead of a kept-alive one)}
// Events: one {event:"response", index, status, statusMessage, headers, b64} per request
// (or {event:"request-error", index, message}), then {event:"done"}.

const http = require('http');
const https = require('hyco-https');
const { parseArgs, emit, describe } = require('./common');

const args = parseArgs(process.argv.slice(2));
const [host, port] = args.ns.split(':');
const defaultTokenUri = args.tokenUri || https.createRelayHttpsUri(args.ns, args.hc);

function send(index, spec) {
  return new Promise((resolve) => {
    const headers = Object.assign({}, spec.headers || {});
    let path = '/' + args.hc + (spec.target || '');
    const tokenIn = spec.tokenIn || 'header';
    const token = https.createRelayToken(spec.tokenUri || defaultTokenUri, args.keyName, spec.key || args.key, spec.expirationSeconds);
    if (tokenIn === 'header') headers['ServiceBusAuthorization'] = token;
    if (tokenIn === 'query') path += (path.indexOf('?') === -1 ? '?' : '&') + 'sb-hc-token=' + encodeURIComponent(token);
    const body = spec.b64 !== undefined ? Buffer.from(spec.b64, 'base64') : null;
    // fresh: a connection of its own (Node's default agent keeps connections alive).
    const agent = spec.fresh ? false : undefined;
    const req = http.request({ host, port: parseInt(port, 10), method: spec.method || 'GET', path, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        emit({ event: 'response', index, status: res.statusCode, statusMessage: res.statusMessage,
               headers: res.headers, b64: Buffer.concat(chunks).toString('base64') });
        resolve();
      });
      res.on('error', (e) => { emit({ event: 'request-error', index, message: describe(e) }); resolve(); });
    });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => { emit({ event: 'request-error', index, message: describe(e) }); resolve(); });
    if (body !== null) req.end(body); else req.end();
  });
}

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', async () => {
  const specs = JSON.parse(input);
  for (let i = 0; i < specs.length; i++) await send(i, specs[i]);
  emit({ event: 'done' });
  process.exit(0);
});
