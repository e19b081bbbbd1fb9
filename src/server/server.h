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
  std::string bin_dir;  // where toani-keyd and toani-connector live
  std::vector<std::string> witness_dirs;  // checkpoint sinks; empty = DATA/witness
  std::vector<std::string> witness_urls;  // C2SP tlog-witness add-checkpoint prefixes
  // Replay store for Action Token jtis: "" or "embedded" = SQLite in DATA/toani.db;
  // "redis://HOST:PORT" = Redis 7, shared by every node (fail closed when unreachable).
  std::string replay_store;
  // Where credentials, policies and the audit log live: "" or "embedded" = SQLite in
  // DATA/toani.db; "postgres://…" / "postgresql://…" = a PostgreSQL database shared by every
  // node (scale-out, docs/operations.md). Migrations run at start. With PostgreSQL and no
  // --replay-store, jtis go to a PostgreSQL table (also shared).
  std::string store;
  // This node's name in the audit hand-off queue (default: hostname-pid).
  std::string node_name;
  // Egress resolver overrides "PATTERN=IP" (e.g. "*.test.internal=10.0.0.5"): names
  // matching PATTERN connect to IP without the global-address check. For local test
  // targets only; empty (off) by default, each one logged at start-up. --dev adds
  // "*.toani.test=127.0.0.1".
  std::vector<std::string> resolver_overrides;
};

// Returns the process exit code. Writes DATA/server.json ({"address","pid"}) once
// listening, and removes it on shutdown.
int RunServer(const ServerOptions& opts);

}  // namespace toani::server
