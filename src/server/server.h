// `toani server`: wires the store, keyd, audit log, sandbox runner and API
// together and serves until SIGINT/SIGTERM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace toani::server {

struct ServerOptions {
  std::string data_dir;  // SQLite, dev PKI, keyd state
  std::string listen_host = "127.0.0.1";
  uint16_t port = 8443;  // 0 = any free port (written to DATA/server.json)
  bool dev = false;
  std::string bin_dir;                    // where toani-keyd and toani-connector live
  std::vector<std::string> witness_dirs;  // checkpoint sinks; empty = DATA/witness
  std::vector<std::string> witness_urls;  // C2SP tlog-witness add-checkpoint prefixes
  // Replay store for Action Token jtis: "" or "embedded" = SQLite in DATA/toani.db;
  // "redis://HOST:PORT" = Redis 7, shared by every node (fail closed when unreachable).
  std::string replay_store;
  // This node's name in the audit hand-off queue (default: hostname-pid).
  std::string node_name;
  // Egress resolver overrides "PATTERN=IP" (e.g. "*.test.internal=10.0.0.5"): names
  // matching PATTERN connect to IP without the global-address check. For local test
  // targets only; empty (off) by default, each one logged at start-up. --dev adds
  // "*.toani.test=127.0.0.1".
  std::vector<std::string> resolver_overrides;
  // PEM bundle of extra CAs the connectors trust for targets (beside the dev CA), e.g.
  // a private CA. Empty: none.
  std::string connector_ca;
  // Base URL targets call back to (/v1/callbacks/...); empty: the listening address.
  std::string public_url;

  // --- set by the config file (docs/configuration.md); defaults here ---
  // Store of credentials, policies and the audit log: "" or "sqlite" = SQLite at
  // DATA/toani.db, "sqlite:PATH", or "postgres://…" / "postgresql://…" = a PostgreSQL
  // database shared by every node (docs/operations.md; migrations run at start). With
  // PostgreSQL and no replay store given, jtis go to a PostgreSQL table (also shared).
  std::string store;
  // Optional second listener WITHOUT client certificates ("HOST:PORT"; "" = none). It
  // serves only routes declared Access::kPublic (health, signed webhook callbacks).
  std::string public_listen;
  // TLS material; "" = the dev PKI in DATA/pki (server.pem, server-key.pem, ca.pem).
  // client_ca may hold several tenant CAs (a PEM bundle).
  std::string tls_cert, tls_key, client_ca;
  // Revocation list checked on every handshake and request ("" = DATA/pki/crl.pem).
  std::string crl;
  size_t max_body_bytes = 256 * 1024;
  size_t max_header_bytes = 16 * 1024;
  int request_timeout_seconds = 30;  // handshake, one whole request, keep-alive idle
  double rate_limit_rps = 500;       // per identity; 0 = unlimited
  double rate_limit_burst = 1000;
  // A request holds its thread while keyd mints and its audit entry is made durable, so
  // this bounds the requests in progress (docs/performance.md: 16 beat 8 and 32).
  size_t threads = 16;
  size_t max_connections = 1024;
  // Origins allowed to call /mcp from a browser (a request without Origin is allowed).
  std::vector<std::string> mcp_allowed_origins;
  std::string log_level = "info";  // debug | info | warn | error
  // Sandboxes kept started ahead of executions (each still used for exactly one);
  // 0 = off: every execution starts its own. Browser executions always start their own.
  size_t sandbox_pool_size = 2;
  // Approval webhook (docs/api.md "Approval webhook"): new approval requests are POSTed
  // to this https URL, Standard Webhooks-signed by keyd with the whsec_ secret held in
  // the credential `approval_webhook_secret_credential`. "" = off.
  std::string approval_webhook_url;
  std::string approval_webhook_secret_credential;
  std::string approval_webhook_ca;  // PEM trust anchors for the receiver; "" = system store
  int approval_webhook_timeout_seconds = 10;
};

// Returns the process exit code. Writes DATA/server.json ({"address","pid"}) once
// listening, and removes it on shutdown.
int RunServer(const ServerOptions& opts);

}  // namespace toani::server
