// The PostgreSQL stores (DESIGN.md §9, docs/operations.md): every store interface over
// one shared database, for several server nodes at once. Opening runs the schema
// migrations (docs/storage.md §1) under an advisory lock, so nodes starting together
// migrate once. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "common/time.h"
#include "store/audit_store.h"
#include "store/store.h"

namespace toani::store {

class PgDatabase {
 public:
  // `url` is a libpq conninfo string or a postgres:// URL; `node` names this node in the
  // audit hand-off queue. Unavailable if PostgreSQL cannot be reached.
  static StatusOr<std::unique_ptr<PgDatabase>> Open(const std::string& url, const std::string& node,
                                                    Clock clock);
  virtual ~PgDatabase() = default;

  virtual Store* store() = 0;
  virtual AuditStore* audit() = 0;
  virtual AuditHandoff* handoff() = 0;
  virtual ReplayStore* replay() = 0;          // the jti table, when no Redis is configured
  virtual PolicyKeyStore* policy_keys() = 0;  // registered policy-admin keys (issue 5)
  virtual ApprovalStore* approvals() = 0;     // human approvals (issue 5)
  virtual LimitCounter* limits() = 0;         // rate limits and budgets, when no Redis
  virtual ExecutionStore* executions() = 0;   // pending webhook executions (issue 7)
  // The schema version after migrations.
  virtual int schema_version() const = 0;
  // Records `value` under `key` the first time; later calls must give the same value
  // (FailedPrecondition naming both otherwise). Nodes use it to prove they hold the same
  // keys (the audit verifier key derives from L0).
  virtual Status ClaimClusterValue(const std::string& key, const std::string& value) = 0;
};

// True for "postgres://…" and "postgresql://…" store URLs.
bool IsPostgresUrl(const std::string& url);

}  // namespace toani::store
