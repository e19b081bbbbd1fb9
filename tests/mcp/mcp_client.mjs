// The official MCP SDK client against toani. Usage:
//   node mcp_client.mjs http  URL CA CERT KEY TOOL ARGS_JSON
//   node mcp_client.mjs stdio TOANI_BIN DATA_DIR TOOL ARGS_JSON   (env: TOANI_ADDR, ...)
// Prints one JSON line: {protocolVersion, serverInfo, tools:[{name, inputSchema}], call}.
// Exit 0 when the session worked; the C++ test asserts the content.
import https from 'node:https';
import fs from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

// fetch over node:https with a client certificate (Node's global fetch cannot present one).
function mtlsFetch(ca, cert, key) {
  const agent = new https.Agent({ ca, cert, key, keepAlive: true, minVersion: 'TLSv1.3' });
  return (url, init = {}) => new Promise((resolve, reject) => {
    const headers = {};
    new Headers(init.headers || {}).forEach((v, k) => { headers[k] = v; });
    const req = https.request(url, { method: init.method || 'GET', headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
        const body = [204, 304].includes(res.statusCode) ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status: res.statusCode, headers: h }));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (init.signal) init.signal.addEventListener('abort', () => req.destroy(new Error('aborted')));
    if (init.body) req.write(init.body);
    req.end();
  });
}

async function main() {
  const [mode, ...rest] = process.argv.slice(2);
  let transport, tool, args;
  if (mode === 'http') {
    const [url, ca, cert, key, t, a] = rest;
    transport = new StreamableHTTPClientTransport(new URL(url), {
      fetch: mtlsFetch(fs.readFileSync(ca), fs.readFileSync(cert), fs.readFileSync(key)),
    });
    [tool, args] = [t, a];
  } else if (mode === 'stdio') {
    const [bin, data, t, a] = rest;
    transport = new StdioClientTransport({
      command: bin, args: ['--data', data, 'mcp-stdio'], env: { ...process.env }, stderr: 'inherit',
    });
    [tool, args] = [t, a];
  } else {
    throw new Error('mode must be http or stdio');
  }
  // Record the protocol version the server answers initialize with.
  let negotiated = null;
  let handler;
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    get() { return handler; },
    set(h) {
      handler = h && ((msg, extra) => {
        if (msg && msg.result && msg.result.protocolVersion) negotiated = msg.result.protocolVersion;
        return h(msg, extra);
      });
    },
  });
  const client = new Client({ name: 'toani-test-client', version: '1.0.0' });
  await client.connect(transport);
  const listed = await client.listTools();
  const out = {
    sdkLatestProtocol: LATEST_PROTOCOL_VERSION,
    protocolVersion: negotiated,
    serverInfo: client.getServerVersion(),
    tools: listed.tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema })),
  };
  if (tool) out.call = await client.callTool({ name: tool, arguments: JSON.parse(args || '{}') });
  try {
    out.unknown = await client.callTool({ name: 'no.such.tool', arguments: {} });
  } catch (e) {
    out.unknownError = { code: e.code, message: String(e.message) };
  }
  await client.close();
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e && e.stack || String(e)); process.exit(1); });
