'use strict';
// Tokens straight from the packages' own createRelayToken, with the clock pinned.
//   stdin: JSON array of {pkg: "hyco-ws"|"hyco-https", uri | {helper, ns, path},
//          keyName, key, expirationSeconds (optional), nowMs}
//   stdout: JSON array of {uri, token}
// createRelayToken reads the clock through moment(), which calls Date.now().

const packages = { 'hyco-ws': require('hyco-ws'), 'hyco-https': require('hyco-https') };
const realNow = Date.now;

function uriOf(pkg, c) {
  if (c.uri !== undefined) return c.uri;
  switch (c.helper) {
    case 'listen': return pkg.createRelayListenUri(c.ns, c.path);
    case 'send': return pkg.createRelaySendUri(c.ns, c.path);
    case 'base': return pkg.createRelayBaseUri(c.ns, c.path);
    // Only hyco-https has this helper; hyco-ws signs the URI it builds.
    case 'https': return packages['hyco-https'].createRelayHttpsUri(c.ns, c.path);
    default: throw new Error('unknown helper ' + c.helper);
  }
}

let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((c) => {
    const pkg = packages[c.pkg];
    const uri = uriOf(pkg, c);
    Date.now = () => c.nowMs;
    try {
      return { uri, token: pkg.createRelayToken(uri, c.keyName, c.key, c.expirationSeconds) };
    } finally {
      Date.now = realNow;
    }
  });
  process.stdout.write(JSON.stringify(out));
});
