'use strict';
// hyco-https listener with a few routes under /{hc}:
//   GET  /echo?...            200, JSON {method, url, path, query, headers, bodySize}
//   POST /echo                200, the request body back, same content-type
//   GET  /big?size=N          200, N pattern bytes in one res.end() (> 65 536: their rendezvous path)
//   GET  /stream?chunks=N&size=M  200, N res.write() calls of M pattern bytes
//   ANY  /status?code=C[&reason=R]  status C (body "status C" unless 204/304)
//   GET  /headers             200, response headers x-single, X-Mixed-Case, set-cookie[2]; JSON of request headers
//   anything else             404
//   node https_listener.js --uri ws://127.0.0.1:PORT/$hc/hc1?sb-hc-action=listen
//                          --key-name NAME --key KEY [--token-uri URI] --hc hc1 [--token-in header|query]
// Events: listening, error, request {method, url, headers, bodySize, bodySha256}. stdin EOF exits.

const https = require('hyco-https');
const url = require('url');
const { parseArgs, emit, sha256, describe, onCommands } = require('./common');

const args = parseArgs(process.argv.slice(2));
const token = https.createRelayToken(args.tokenUri || args.uri, args.keyName, args.key);
let listenUri = args.uri;
let tokenOption = token;
if (args.tokenIn === 'query') {
  listenUri += '&sb-hc-token=' + encodeURIComponent(token);
  tokenOption = () => '';  // no header (HybridConnectionHttpsServer.js:322-333)
}
const prefix = '/' + args.hc;

function pattern(size) {
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + 7) & 0xff;
  return buf;
}

function route(req, res, body) {
  const parsed = url.parse(req.url, true);
  let path = parsed.pathname || '';
  if (path === prefix || path.startsWith(prefix + '/')) path = path.slice(prefix.length);
  const query = parsed.query;

  if (path === '/echo' && req.method === 'POST') {
    res.setHeader('content-type', req.headers['content-type'] || 'application/octet-stream');
    res.setHeader('x-body-sha256', sha256(body));
    // res.end(<empty Buffer>) never answers: a Buffer is truthy, so end() takes the
    // write_ path (hyco-https/lib/_hyco_outgoing.js:721-728), which returns on a
    // zero-length chunk before sending anything (_hyco_outgoing.js:607).
    if (body.length) res.end(body); else res.end();
  } else if (path === '/echo') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({
      method: req.method, url: req.url, path, query, headers: req.headers, bodySize: body.length,
    }));
  } else if (path === '/big') {
    res.setHeader('content-type', 'application/octet-stream');
    res.end(pattern(parseInt(query.size, 10)));
  } else if (path === '/stream') {
    const chunks = parseInt(query.chunks, 10);
    const chunk = pattern(parseInt(query.size, 10));
    res.setHeader('content-type', 'application/octet-stream');
    let sent = 0;
    const next = () => {
      if (sent === chunks) { res.end(); return; }
      sent++;
      res.write(chunk);
      setImmediate(next);
    };
    next();
  } else if (path === '/status') {
    const code = parseInt(query.code, 10);
    if (query.reason) res.statusMessage = query.reason;
    res.statusCode = code;
    res.setHeader('x-status', String(code));
    if (code === 204 || code === 304) res.end();
    else { res.setHeader('content-type', 'text/plain'); res.end('status ' + code); }
  } else if (path === '/headers') {
    res.setHeader('x-single', 'one');
    res.setHeader('X-Mixed-Case', 'Value');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.headers));
  } else {
    res.statusCode = 404;
    res.setHeader('content-type', 'text/plain');
    res.end('no route ' + path);
  }
}

const server = https.createRelayedServer({ server: listenUri, token: tokenOption }, (req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    emit({ event: 'request', method: req.method, url: req.url, headers: req.headers,
           bodySize: body.length, bodySha256: sha256(body) });
    try {
      route(req, res, body);
    } catch (e) {
      emit({ event: 'handler-error', message: describe(e) });
    }
  });
});
server.on('listening', () => emit({ event: 'listening' }));
server.on('error', (e) => emit({ event: 'error', message: describe(e) }));
server.listen();

onCommands((command) => emit({ event: 'bad-command', message: 'no commands' }), () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
});
