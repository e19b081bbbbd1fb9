// A real approval-webhook receiver for the tests: HTTPS on 127.0.0.1 (port 0), every
// POST verified with the npm `standardwebhooks` library (the reference implementation)
// against the raw body and headers, and recorded. The first `fail_first` deliveries
// are answered 500 (so the sender must retry); later ones 204.
// Usage: node approval_webhook_receiver.js CONFIG.json — {cert, key, secret, fail_first}.
// Prints {"port": P} when ready; GET /deliveries returns what it received. Stops on
// SIGTERM or when stdin closes.
'use strict';
const fs = require('fs');
const https = require('https');
const { Webhook } = require('standardwebhooks');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const wh = new Webhook(cfg.secret);
const deliveries = [];

const server = https.createServer({ cert: fs.readFileSync(cfg.cert), key: fs.readFileSync(cfg.key) },
  (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'GET' && req.url === '/deliveries') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(deliveries));
        return;
      }
      const d = {
        method: req.method, path: req.url, headers: req.headers,
        body: body.toString('utf8'), verified: false, error: null, answered: 0,
      };
      try {
        wh.verify(body, {
          'webhook-id': req.headers['webhook-id'],
          'webhook-timestamp': req.headers['webhook-timestamp'],
          'webhook-signature': req.headers['webhook-signature'],
        });
        d.verified = true;
      } catch (e) {
        d.error = String(e.message);
      }
      d.answered = !d.verified ? 401 : (deliveries.length < (cfg.fail_first || 0) ? 500 : 204);
      deliveries.push(d);
      res.writeHead(d.answered);
      res.end();
    });
  });
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
