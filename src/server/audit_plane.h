// The server's audit plane: the store, keyd's signer, the log, the outbox and the
// witness publisher, opened in the order the fail-closed argument needs
// (docs/audit-format.md §5, §8), and the /v1/audit routes that serve it.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "audit/log.h"
#include "audit/outbox.h"
#include "audit/signer.h"
#include "audit/witness.h"
#include "common/http_client.h"
#include "keyd/client.h"
#include "server/https_server.h"
#include "store/audit_store.h"

namespace toani::server {

struct AuditPlaneOptions {
  std::string db_path;                    // the SQLite database
  std::string outbox_dir;                 // DATA/audit/outbox
  std::vector<std::string> witness_dirs;  // directory sinks (dev default: DATA/witness)
  std::vector<std::string> witness_urls;  // C2SP tlog-witness submission prefixes (https)
  ClientTls witness_tls;
  // Where the last checkpoint each HTTP witness accepted is kept (one subdirectory per
  // url, audit::HttpWitnessStateDir); "" keeps none.
  std::string witness_state_dir;
  std::chrono::milliseconds publish_interval{1000};
  // Scale-out: the shared PostgreSQL audit store and the hand-off queue through which this
  // node's entries reach the sequencer (docs/storage.md §2). Null: SQLite at db_path.
  store::AuditStore* shared_store = nullptr;
  store::AuditHandoff* handoff = nullptr;
};

struct AuditPlane {
  std::unique_ptr<store::AuditStore> store;  // null when shared_store was given
  std::unique_ptr<audit::AuditSigner> signer;
  std::unique_ptr<audit::AuditLog> log;
  std::unique_ptr<audit::Outbox> outbox;
  std::unique_ptr<audit::WitnessPublisher> publisher;
};

// Fails (the server must not start) if the stored log does not verify. A log that
// verifies but is behind or beside a published checkpoint opens faulted: /readyz is 503
// and appends are refused. Published checkpoints are read back from every directory
// sink and from the kept copy of each HTTP witness's last accepted checkpoint; then the
// current checkpoint is submitted to every sink before this returns, so an HTTP witness
// that cosigned a larger or different tree faults the log before the first request.
StatusOr<std::unique_ptr<AuditPlane>> OpenAuditPlane(const AuditPlaneOptions& opts,
                                                     keyd::KeyServiceClient* keyd,
                                                     const nlohmann::json& keyd_status);

}  // namespace toani::server
