// Storage interfaces. The server core depends on these, not on SQLite; the
// PostgreSQL implementation (issue 9) slots in behind the same interfaces.
// All methods are thread-safe. Nothing stored here is ever secret: credentials
// are keyd-sealed blobs, tokens are known only by their jti.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace toani::store {

struct CredentialRecord {
  std::string tenant, id, name, type;
  int64_t version = 1;
  std::string blob;         // keyd-sealed (docs/formats.md §2); opaque to the server
  std::string fingerprint;  // keyed (docs/formats.md §3)
  std::string created_at;
};

struct PolicyRecord {
  std::string tenant, policy_id;
  int64_t version = 0;
  std::string document;  // the policy JSON as applied
  std::string applied_at;
};

struct AuditRow {
  uint64_t index = 0;
  std::string entry;  // RFC 8785 canonical JSON (docs/formats.md §5)
  std::array<uint8_t, 32> leaf_hash{};
  // Cluster hand-off id (PostgreSQL, docs/operations.md): the queued entry this row was
  // sequenced from; 0 when appended directly (SQLite, single node).
  int64_t handoff_id = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // AlreadyExists if (tenant, id) exists.
  virtual Status AddCredential(const CredentialRecord& rec) = 0;
  virtual StatusOr<CredentialRecord> GetCredential(const std::string& tenant,
                                                   const std::string& id) = 0;
  virtual StatusOr<std::vector<CredentialRecord>> ListCredentials(const std::string& tenant) = 0;
  virtual StatusOr<int64_t> CountCredentials() = 0;
  // Replaces the stored blob of (rec.tenant, rec.id) by a newer version (rec.version,
  // rec.blob, rec.fingerprint) only if the stored version is still `expected_version`
  // (compare-and-swap): FailedPrecondition if it moved on, NotFound if absent. Used when
  // a connector returns a rotated OAuth refresh token sealed to keyd. Stores that do not
  // implement it refuse (Unavailable), so the rotation fails closed and is audited.
  virtual Status ReplaceCredentialVersion(const CredentialRecord& rec, int64_t expected_version) {
    (void)rec;
    (void)expected_version;
    return Status::Unavailable("this store cannot replace credential versions");
  }

  // FailedPrecondition unless rec.version is greater than every stored version of
  // (tenant, policy_id). Every version is kept.
  virtual Status PutPolicy(const PolicyRecord& rec) = 0;
  // The newest version of each policy of the tenant.
  virtual StatusOr<std::vector<PolicyRecord>> LatestPolicies(const std::string& tenant) = 0;
  virtual StatusOr<PolicyRecord> GetPolicy(const std::string& tenant, const std::string& policy_id,
                                           int64_t version) = 0;

  // Appends exactly at `row.index` (== current size) and is durable when it
  // returns OK. There is no update or delete.
  virtual Status AppendAudit(const AuditRow& row) = 0;
  virtual StatusOr<std::vector<AuditRow>> ReadAudit(uint64_t from, uint64_t to) = 0;  // [from, to)
  virtual StatusOr<uint64_t> AuditSize() = 0;
};

// Single use of Action Tokens (DESIGN.md §4).
class ReplayStore {
 public:
  virtual ~ReplayStore() = default;
  // OK the first time `jti` is seen; AlreadyExists after; Unavailable if the
  // store cannot say (callers must then refuse: fail closed).
  virtual Status ConsumeOnce(const std::string& jti, SysTime expires_at) = 0;
};

// Asynchronous (webhook connector) executions: pending until a signed callback
// arrives (docs/formats.md §9). Nothing here is secret: the callback secret is a keyd
// credential named by id.
struct PendingExecution {
  std::string execution_id;  // "exe_" + 24 hex; the callback path names it
  std::string tenant, agent, action, policy_id;
  int64_t policy_version = 0;
  std::string params_hash, jti;
  std::string secret_credential_id;  // the whsec_ credential that signs callbacks
  std::string started_at;            // RFC 3339
  int64_t expires_at = 0;            // Unix seconds; after it the execution has expired
  std::string status = "pending";    // pending | succeeded | failed | expired
  std::string result;                // JSON text: what the agent gets once finished
  std::string receipt;               // JSON text: the execution receipt
};

class ExecutionStore {
 public:
  virtual ~ExecutionStore() = default;
  // AlreadyExists if the id exists.
  virtual Status PutPending(const PendingExecution& e) = 0;
  // NotFound if unknown.
  virtual StatusOr<PendingExecution> GetExecution(const std::string& execution_id) = 0;
  // Moves a pending execution to `status` with its result and receipt, atomically and
  // only once: FailedPrecondition if it is no longer pending (a second callback).
  virtual Status FinishExecution(const std::string& execution_id, const std::string& status,
                                 const std::string& result, const std::string& receipt) = 0;
  // Insert-if-absent of a webhook message id per execution, remembered until
  // `expires_at`: AlreadyExists for a replayed id.
  virtual Status RememberWebhookId(const std::string& execution_id, const std::string& webhook_id,
                                   SysTime expires_at) = 0;
};

// The embedded SQLite store (WAL, synchronous=FULL). `path` is created if absent.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
StatusOr<std::unique_ptr<ReplayStore>> OpenSqliteReplayStore(const std::string& path, Clock clock);
StatusOr<std::unique_ptr<ExecutionStore>> OpenSqliteExecutionStore(const std::string& path);

}  // namespace toani::store
