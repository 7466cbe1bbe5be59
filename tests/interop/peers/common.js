'use strict';
// Shared plumbing for the interop peers: argv parsing, JSON-lines events on
// stdout, JSON-lines commands on stdin. The Python tests drive the peers
// through these two pipes; closing stdin tells a peer to exit.

const crypto = require('crypto');
const readline = require('readline');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error('unexpected argument ' + arg);
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    out[name] = argv[++i];
  }
  return out;
}

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function describe(error) {
  if (error === undefined || error === null) return String(error);
  if (error.message) return String(error.message);
  if (error.error && error.error.message) return String(error.error.message);
  return String(error);
}

// Calls handler(command) for each JSON line on stdin, and onEnd() when stdin closes.
function onCommands(handler, onEnd) {
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    let command;
    try {
      command = JSON.parse(line);
    } catch (e) {
      emit({ event: 'bad-command', message: describe(e) });
      return;
    }
    handler(command);
  });
  lines.on('close', onEnd);
}

// The payload of a "send" command: {"text": "..."} or {"b64": "..."}.
function payloadOf(command) {
  if (typeof command.text === 'string') return { data: command.text, binary: false };
  return { data: Buffer.from(command.b64 || '', 'base64'), binary: true };
}

// A received message as an event: text stays text, binary goes base64.
function messageEvent(id, data, binary) {
  if (binary) {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    return { event: 'message', id, binary: true, size: buf.length, b64: buf.toString('base64') };
  }
  const text = Buffer.isBuffer(data) ? data.toString('utf8') : String(data);
  return { event: 'message', id, binary: false, size: Buffer.byteLength(text), text };
}

module.exports = { parseArgs, emit, sha256, describe, onCommands, payloadOf, messageEvent };
