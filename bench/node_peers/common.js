'use strict';
// argv (--name value -> args.name), the ready line, and exit on stdin EOF.

const args = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  args[argv[i].slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = argv[i + 1];
}

let announced = false;
function ready() {
  if (!announced) { announced = true; process.stdout.write(JSON.stringify({ ready: true }) + '\n'); }
}

function onStdinEnd(close) {
  process.stdin.resume();
  process.stdin.on('end', () => {
    try { close(); } catch (e) { /* exiting anyway */ }
    setTimeout(() => process.exit(0), 300).unref();
  });
}

module.exports = { args, ready, onStdinEnd };
