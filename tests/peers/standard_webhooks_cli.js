// The Standard Webhooks reference library (npm `standardwebhooks`) as a command line,
// for checking toani's C++ implementation against it.
//   node standard_webhooks_cli.js sign   SECRET ID TIMESTAMP BODY_B64      -> prints the signature
//   node standard_webhooks_cli.js verify SECRET ID TIMESTAMP SIG BODY_B64  -> "ok" or the error (exit 1)
'use strict';
const { Webhook } = require('standardwebhooks');

const [cmd, secret, id, ts, ...rest] = process.argv.slice(2);
const wh = new Webhook(secret);
if (cmd === 'sign') {
  const body = Buffer.from(rest[0], 'base64');
  process.stdout.write(wh.sign(id, new Date(Number(ts) * 1000), body) + '\n');
} else if (cmd === 'verify') {
  const body = Buffer.from(rest[1], 'base64');
  try {
    wh.verify(body, { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': rest[0] });
    process.stdout.write('ok\n');
  } catch (e) {
    process.stdout.write(String(e.message) + '\n');
    process.exit(1);
  }
} else {
  process.stderr.write('usage: sign|verify ...\n');
  process.exit(2);
}
