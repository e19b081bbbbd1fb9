// Local HTTPS targets for the connector tests, started by the tests on 127.0.0.1 with
// port 0, and stopped by them (SIGTERM or stdin closing):
//   - an echo-everything target that reflects what it received (headers, query, body)
//     in every common encoding, in the body and in response headers;
//   - API endpoints that check a credential per injection style and redirect;
//   - a form endpoint (urlencoded and multipart);
//   - a legacy cookie login page with a value behind the login;
//   - an OAuth 2 authorization server (npm oauth2-mock-server, unchanged) that enforces
//     refresh-token rotation, plus a resource server that verifies its JWTs (jose);
//   - a webhook target that accepts an async job and later calls back, signed with the
//     npm `standardwebhooks` library.
// Usage: node targets.js CONFIG.json — config: {cert, key, secrets: {...}}. Prints one
// JSON line {"port": P, "oauth_port": Q} when ready.
'use strict';
const fs = require('fs');
const https = require('https');
const crypto = require('crypto');
const { OAuth2Server, Events } = require('oauth2-mock-server');
const jose = require('jose');
const { Webhook } = require('standardwebhooks');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const secrets = cfg.secrets || {};
const tls = { cert: fs.readFileSync(cfg.cert), key: fs.readFileSync(cfg.key) };

// ---------- OAuth state (the test drives it through /admin) ----------
const oauth = {
  refresh: secrets.refresh_token || '',
  client_id: secrets.client_id || '',
  client_secret: secrets.client_secret || '',
  expire_next: 0,        // issue this many already-expired access tokens first
  exchanges: 0,
  refused: 0,
  resource_calls: 0,
  resource_refused: 0,
};

function encodings(v) {
  const b = Buffer.from(v, 'utf8');
  return {
    raw: v,
    b64: b.toString('base64'),
    b64url: b.toString('base64url'),
    hex: b.toString('hex'),
    HEX: b.toString('hex').toUpperCase(),
    url: encodeURIComponent(v),
    url_lower: encodeURIComponent(v).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    form: new URLSearchParams({ v }).toString().slice(2),
    json: JSON.stringify(v).slice(1, -1),
  };
}

// Every value the request carried: header values (and the part after an auth scheme,
// and a decoded Basic pair), query values, the body and its form fields.
function carriedValues(req, url, body) {
  const vals = [];
  for (const [k, v] of Object.entries(req.headers)) {
    vals.push(String(v));
    const m = /^(Bearer|Basic|Token)\s+(.+)$/i.exec(String(v));
    if (m) {
      vals.push(m[2]);
      if (m[1].toLowerCase() === 'basic') {
        const dec = Buffer.from(m[2], 'base64').toString('utf8');
        vals.push(dec, ...dec.split(':'));
      }
    }
  }
  for (const [, v] of url.searchParams) vals.push(v);
  if (body.length) {
    vals.push(body);
    try { for (const [, v] of new URLSearchParams(body)) vals.push(v); } catch (e) { /* not a form */ }
  }
  return [...new Set(vals.filter((v) => v.length >= 4))];
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json', ...headers });
  res.end(text);
}

// Which injection style delivered which known secret.
function seenIn(req, url, body) {
  const out = [];
  const known = Object.entries(secrets).filter(([, v]) => typeof v === 'string' && v.length >= 4);
  for (const [name, v] of known) {
    for (const [h, hv] of Object.entries(req.headers)) {
      if (String(hv).includes(v)) out.push(`header:${h}:${name}`);
      const m = /^Basic\s+(.+)$/i.exec(String(hv));
      if (m && Buffer.from(m[1], 'base64').toString('utf8').split(':').includes(v)) out.push(`basic:${name}`);
    }
    for (const [k, qv] of url.searchParams) if (qv === v) out.push(`query:${k}:${name}`);
    if (body.includes(v)) out.push(`body:${name}`);
  }
  return out;
}

function parseMultipart(body, contentType) {
  const m = /boundary=([^;]+)/.exec(contentType || '');
  if (!m) return null;
  const fields = {};
  for (const part of body.split('--' + m[1])) {
    const mm = /Content-Disposition: form-data; name="([^"]+)"\r\n\r\n([\s\S]*)\r\n$/.exec(part);
    if (mm) fields[mm[1]] = mm[2];
  }
  return fields;
}

const sessions = new Set();
const webhookJobs = [];

async function handle(req, res) {
  const url = new URL(req.url, 'https://' + (req.headers.host || 'x'));
  const body = await readBody(req);
  const p = url.pathname;

  if (p === '/echo' || p.startsWith('/echo/')) {
    const vals = carriedValues(req, url, body);
    const headers = {};
    vals.forEach((v, i) => {
      const e = encodings(v);
      for (const k of ['b64', 'b64url', 'hex', 'HEX', 'url']) headers[`X-Echo-${i}-${k}`] = e[k];
      if (/^[\x20-\x7e]*$/.test(v)) headers[`X-Echo-${i}-raw`] = v;
    });
    return send(res, 200, {
      method: req.method, url: req.url, headers: req.headers, body,
      seen_in: seenIn(req, url, body),
      encodings: vals.map(encodings),
      html: vals.map((v) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;')),
    }, headers);
  }
  if (p === '/check') {  // 200 only when a known secret arrived; says where
    const seen = seenIn(req, url, body);
    return send(res, seen.length ? 200 : 401, { ok: seen.length > 0, seen_in: seen });
  }
  if (p === '/redirect') {  // /redirect?to=URL&code=302
    return send(res, Number(url.searchParams.get('code') || 302), 'moved', { Location: url.searchParams.get('to') });
  }
  if (p === '/form') {
    const ct = req.headers['content-type'] || '';
    let fields = null;
    let encoding = null;
    if (ct.startsWith('application/x-www-form-urlencoded')) {
      fields = Object.fromEntries(new URLSearchParams(body));
      encoding = 'urlencoded';
    } else if (ct.startsWith('multipart/form-data')) {
      fields = parseMultipart(body, ct);
      encoding = 'multipart';
    }
    if (!fields) return send(res, 415, { error: 'not a form' });
    const ok = fields.user === secrets.username && fields.password === secrets.password;
    return send(res, ok ? 200 : 403, {
      logged_in: ok, encoding, field_names: Object.keys(fields).sort(),
      memo: fields.memo, echo_password: fields.password,
    });
  }
  // ---- legacy login page ----
  const cookie = /(?:^|;\s*)sid=([a-f0-9]+)/.exec(req.headers.cookie || '');
  const loggedIn = cookie && sessions.has(cookie[1]);
  if (p === '/login' && req.method === 'GET') {
    return send(res, 200, `<!doctype html><html><head><title>Legacy Bank</title></head><body>
<h1>Legacy Bank login</h1>
<form method="post" action="/login">
<label>User <input id="user" name="user" autocomplete="off"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Sign in</button></form></body></html>`);
  }
  if (p === '/login' && req.method === 'POST') {
    const f = Object.fromEntries(new URLSearchParams(body));
    if (f.user === secrets.username && f.password === secrets.password) {
      const sid = crypto.randomBytes(16).toString('hex');
      sessions.add(sid);
      res.writeHead(303, { Location: '/account', 'Set-Cookie': `sid=${sid}; Path=/; Secure; HttpOnly` });
      return res.end();
    }
    return send(res, 403, '<html><body><p id="error">Wrong user or password</p></body></html>');
  }
  if (p === '/account') {
    if (!loggedIn) { res.writeHead(303, { Location: '/login' }); return res.end(); }
    return send(res, 200, `<!doctype html><html><body><h1>Account</h1>
<p>Balance: <span id="balance">4242.17 EUR</span></p>
<p id="leak">debug: password=${secrets.password} b64=${Buffer.from(secrets.password || '').toString('base64')}</p>
</body></html>`);
  }
  // ---- OAuth resource server ----
  if (p === '/resource') {
    oauth.resource_calls++;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    try {
      if (!m) throw new Error('no token');
      const jwks = jose.createLocalJWKSet({ keys: oauthServer.issuer.keys.toJSON() });
      const { payload } = await jose.jwtVerify(m[1], jwks, { issuer: oauthServer.issuer.url });
      return send(res, 200, { data: 'resource-ok', sub: payload.sub, echoed_token: m[1] });
    } catch (e) {
      oauth.resource_refused++;
      return send(res, 401, { error: 'invalid_token', why: String(e.code || e.message) },
        { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
  }
  // ---- webhook target: accepts a job, calls back later ----
  if (p === '/jobs' && req.method === 'POST') {
    const seen = seenIn(req, url, body);
    if (!seen.length) return send(res, 401, { error: 'no credential' });
    let job;
    try { job = JSON.parse(body); } catch (e) { return send(res, 400, { error: 'json' }); }
    const id = 'job_' + crypto.randomBytes(6).toString('hex');
    webhookJobs.push({ id, callback: req.headers['webhook-callback'] || job.callback_url, input: job });
    return send(res, 202, { job_id: id, status: 'accepted' });
  }
  // ---- admin, for the test only ----
  if (p === '/admin/oauth' && req.method === 'POST') {
    Object.assign(oauth, JSON.parse(body || '{}'));
    return send(res, 200, oauth);
  }
  if (p === '/admin/oauth') return send(res, 200, oauth);
  if (p === '/admin/jobs') return send(res, 200, webhookJobs);
  if (p === '/admin/sign' && req.method === 'POST') {
    // Signs a callback with the standardwebhooks library: {secret, id, timestamp, body}.
    const a = JSON.parse(body);
    const wh = new Webhook(a.secret);
    const sig = wh.sign(a.id, new Date(a.timestamp * 1000), a.body);
    return send(res, 200, { 'webhook-id': a.id, 'webhook-timestamp': String(a.timestamp), 'webhook-signature': sig });
  }
  return send(res, 404, { error: 'no route ' + p });
}

let oauthServer;
(async () => {
  oauthServer = new OAuth2Server(cfg.key, cfg.cert);
  await oauthServer.issuer.keys.generate('RS256');
  oauthServer.service.on(Events.BeforeTokenSigning, (token) => {
    if (oauth.expire_next > 0) {
      oauth.expire_next--;
      token.payload.exp = Math.floor(Date.now() / 1000) - 120;
    }
  });
  oauthServer.service.on(Events.BeforeResponse, (tokenResponse, req) => {
    if (req.body.grant_type !== 'refresh_token') return;
    oauth.exchanges++;
    let id = req.body.client_id;
    let sec = req.body.client_secret;
    const m = /^Basic (.+)$/.exec(req.headers.authorization || '');
    if (m) {
      const [u, s] = Buffer.from(m[1], 'base64').toString('utf8').split(':').map(decodeURIComponent);
      id = u; sec = s;
    }
    if (id !== oauth.client_id || sec !== oauth.client_secret || req.body.refresh_token !== oauth.refresh) {
      oauth.refused++;
      tokenResponse.statusCode = 400;
      tokenResponse.body = { error: 'invalid_grant' };
      return;
    }
    oauth.refresh = tokenResponse.body.refresh_token;  // rotated: the old one is dead now
  });
  await oauthServer.start(0, '127.0.0.1');
  const oauthPort = oauthServer.address().port;
  oauthServer.issuer.url = `https://oauth.toani.test:${oauthPort}`;

  const server = https.createServer(tls, (req, res) => {
    handle(req, res).catch((e) => { res.writeHead(500); res.end(String(e)); });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port, oauth_port: oauthPort }) + '\n');
  });
  const stop = () => { server.close(); oauthServer.stop().finally(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
})().catch((e) => { console.error(e); process.exit(1); });
