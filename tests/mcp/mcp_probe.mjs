// Raw Streamable HTTP probes of /mcp that the SDK client never sends: a foreign Origin,
// an unsupported MCP-Protocol-Version, a notification, the optional GET stream.
// Usage: node mcp_probe.mjs URL CA CERT KEY. Prints one JSON line of HTTP statuses.
import https from 'node:https';
import fs from 'node:fs';

const [url, ca, cert, key] = process.argv.slice(2);
const agent = new https.Agent({ ca: fs.readFileSync(ca), cert: fs.readFileSync(cert), key: fs.readFileSync(key) });

function call(method, headers, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const json = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
const out = {
  evilOrigin: await call('POST', { ...json, Origin: 'https://evil.example' }, ping),
  noOrigin: await call('POST', json, ping),
  badVersion: await call('POST', { ...json, 'MCP-Protocol-Version': '1999-01-01' }, ping),
  notification: await call('POST', json, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })),
  getStream: await call('GET', { Accept: 'text/event-stream' }),
};
console.log(JSON.stringify(out));
