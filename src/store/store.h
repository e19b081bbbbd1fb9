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

// The embedded SQLite store (WAL, synchronous=FULL). `path` is created if absent.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
StatusOr<std::unique_ptr<ReplayStore>> OpenSqliteReplayStore(const std::string& path, Clock clock);

}  // namespace toani::store
