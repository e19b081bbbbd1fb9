// Storage interfaces. The server core depends on these, not on SQLite; the
// PostgreSQL implementation (issue 9) slots in behind the same interfaces.
// All methods are thread-safe. Nothing stored here is ever secret: credentials
// are keyd-sealed blobs, tokens are known only by their jti.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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
  // standard | privileged | personal | kyc_gated (docs/policy.md); set by credential admins.
  std::string sensitivity = "standard";
};

struct PolicyRecord {
  std::string tenant, policy_id;
  int64_t version = 0;
  std::string document;  // the policy JSON as applied (RFC 8785 canonical when signed)
  std::string applied_at;
  std::string
      signatures{};  // JSON array of {"keyid","sig"} (docs/formats.md §9); "" = unsigned (legacy)
  std::string applied_by{};  // SPIFFE id of the policy admin who applied it
};

// A registered policy-admin signing key (docs/formats.md §9).
struct PolicyKeyRecord {
  std::string tenant;
  std::string key_id;      // PASERK k4.pid of the public key
  std::string public_key;  // PASERK k4.public
  std::string name;        // who holds it (free text)
  std::string added_by, added_at;
  std::string revoked_at;  // "" while valid
};

// One human-approval request (DESIGN.md §6, docs/policy.md "Human approval").
struct ApprovalDecisionRecord {
  std::string approver;  // SPIFFE id
  std::string decision;  // "approve" | "deny"
  std::string decided_at;
  std::string comment;
};

struct ApprovalRecord {
  std::string tenant, id;
  std::string agent;                        // agent name
  std::string requester;                    // agent SPIFFE id
  std::string user;                         // the human the agent acts for ("-" if none)
  std::string action, params_hash, params;  // params: the JSON approvers see
  std::string policy_id;
  int64_t policy_version = 0;
  std::string risk_tier;
  int64_t approvers_required = 1;
  // "pending" → "approved" | "denied" | "expired"; "approved" → "redeemed" (token issued).
  std::string status = "pending";
  std::string created_at;
  int64_t expires_at = 0;      // unix seconds
  int64_t poll_interval = 5;   // seconds; grows by 5 on each slow_down
  int64_t last_polled_at = 0;  // unix seconds, 0 = never
  std::string proof;           // "sha256:…" of the signed approval record once decided
  std::string decided_at;
  std::vector<ApprovalDecisionRecord> decisions;
};

struct ApprovalPoll {
  ApprovalRecord record;  // after the poll
  bool slow_down = false;
};

// One approval announcement waiting for delivery to the approval webhook
// (docs/formats.md §11): the exact body bytes to sign and send, and its retry state.
struct WebhookOutboxRow {
  std::string tenant, approval_id;
  std::string msg_id;  // webhook-id, the same on every attempt
  std::string body;    // the JSON payload, fixed when queued
  int64_t attempts = 0;
  int64_t next_attempt_at = 0;  // unix milliseconds
  int64_t expires_at = 0;       // the approval's expiry: undelivered by then = dropped
  std::string last_error;
};

// Rate limits and budgets: named counters per fixed window (Redis can implement
// this with INCRBYFLOAT + PEXPIRE in a script).
struct LimitResult {
  bool admitted = false;
  double total = 0;  // the counter after the call (unchanged when not admitted)
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
  // (policy_id, newest version) of each policy of the tenant, ordered by policy_id, without
  // the documents: lets a caller tell whether its parsed copy is current on every request.
  // A number that changes whenever a policy version is stored, for any tenant, or
  // nullopt when this store has no such cheap check: a caller whose parsed copy was read
  // at the same stamp need not ask for the versions again. SQLite counts the versions this
  // store object stored, which covers every one because the server is the file's only
  // writer (it locks the file); PostgreSQL, shared by the nodes of a cluster, has none.
  virtual StatusOr<std::optional<int64_t>> PoliciesStamp() { return std::optional<int64_t>(); }
  virtual StatusOr<std::vector<std::pair<std::string, int64_t>>> LatestPolicyVersions(
      const std::string& tenant) {
    TOANI_ASSIGN_OR_RETURN(auto recs, LatestPolicies(tenant));
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& r : recs) out.emplace_back(r.policy_id, r.version);
    return out;
  }
  virtual StatusOr<PolicyRecord> GetPolicy(const std::string& tenant, const std::string& policy_id,
                                           int64_t version) = 0;
  // Every stored version of one policy, oldest first (NotFound if there is none).
  virtual StatusOr<std::vector<PolicyRecord>> PolicyHistory(const std::string& tenant,
                                                            const std::string& policy_id) = 0;

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

// Registered policy-admin keys. Keys are never deleted, only revoked.
class PolicyKeyStore {
 public:
  virtual ~PolicyKeyStore() = default;
  // AlreadyExists if (tenant, key_id) is registered.
  virtual Status AddPolicyKey(const PolicyKeyRecord& rec) = 0;
  virtual StatusOr<std::vector<PolicyKeyRecord>> ListPolicyKeys(const std::string& tenant) = 0;
  // NotFound if unknown (revoked keys are returned, with revoked_at set).
  virtual StatusOr<PolicyKeyRecord> GetPolicyKey(const std::string& tenant,
                                                 const std::string& key_id) = 0;
  // NotFound if unknown; FailedPrecondition if already revoked.
  virtual Status RevokePolicyKey(const std::string& tenant, const std::string& key_id,
                                 const std::string& revoked_at) = 0;
};

// Approval requests. Every state change is one atomic check-and-set, so concurrent
// approvers on several nodes cannot both complete (or double-count) a request.
class ApprovalStore {
 public:
  virtual ~ApprovalStore() = default;
  // AlreadyExists if the id exists.
  virtual Status CreateApproval(const ApprovalRecord& rec) = 0;
  virtual StatusOr<ApprovalRecord> GetApproval(const std::string& tenant,
                                               const std::string& id) = 0;
  // Newest first; status "" = all. At most `limit` rows.
  virtual StatusOr<std::vector<ApprovalRecord>> ListApprovals(const std::string& tenant,
                                                              const std::string& status,
                                                              size_t limit) = 0;
  // Records one approver's decision on a pending request, atomically:
  // NotFound (no such request); FailedPrecondition (not pending, or expired at `now`:
  // the request is then marked expired); AlreadyExists (this approver already decided).
  // A "deny" sets status "denied"; the approve that reaches approvers_required sets
  // "approved". When the status leaves "pending", `finalize` is called (inside the
  // transaction) with the updated record and returns the proof hash to store; if it
  // fails, nothing changes. Returns the updated record.
  virtual StatusOr<ApprovalRecord> Decide(
      const std::string& tenant, const std::string& id, const ApprovalDecisionRecord& d,
      int64_t now, const std::function<StatusOr<std::string>(const ApprovalRecord&)>& finalize) = 0;
  // Agent polling (CIBA): records the poll time. A poll sooner than poll_interval
  // after the previous one sets slow_down and grows the stored interval by 5 s (at
  // most 60). A pending request past expires_at is marked "expired" first.
  virtual StatusOr<ApprovalPoll> Poll(const std::string& tenant, const std::string& id,
                                      int64_t now) = 0;
  // "approved" → "redeemed" exactly once (FailedPrecondition otherwise).
  virtual Status Redeem(const std::string& tenant, const std::string& id) = 0;
  // The newest "denied" request for the same agent, action and params_hash decided at
  // or after `since` (unix seconds); NotFound if none.
  virtual StatusOr<ApprovalRecord> RecentDenial(const std::string& tenant, const std::string& agent,
                                                const std::string& action,
                                                const std::string& params_hash, int64_t since) = 0;
};

// Durable queue of approval announcements (survives restarts). Rows are removed once
// delivered or once the approval is no longer pending.
class WebhookOutbox {
 public:
  virtual ~WebhookOutbox() = default;
  // Queues a row; a second Put for the same (tenant, approval_id) changes nothing.
  virtual Status Put(const WebhookOutboxRow& row) = 0;
  // Rows with next_attempt_at <= now, oldest first, at most `limit`.
  virtual StatusOr<std::vector<WebhookOutboxRow>> Due(int64_t now, size_t limit) = 0;
  // The smallest next_attempt_at of any row; NotFound when the outbox is empty.
  virtual StatusOr<int64_t> NextDue() = 0;
  virtual Status Reschedule(const std::string& tenant, const std::string& approval_id,
                            int64_t attempts, int64_t next_attempt_at,
                            const std::string& last_error) = 0;
  virtual Status Remove(const std::string& tenant, const std::string& approval_id) = 0;
  virtual StatusOr<std::vector<WebhookOutboxRow>> List() = 0;
};

class LimitCounter {
 public:
  virtual ~LimitCounter() = default;
  // Adds `amount` to counter `key` in the window starting at `window_start` (unix
  // seconds) unless the total would exceed `limit`; atomic. Unavailable if the
  // store cannot answer (callers deny: fail closed).
  virtual StatusOr<LimitResult> TryAdd(const std::string& key, int64_t window_start,
                                       int64_t window_seconds, double amount, double limit) = 0;
  // The counter's current total (0 if absent); no side effect (simulate).
  virtual StatusOr<double> Current(const std::string& key, int64_t window_start) = 0;
};

// The embedded SQLite store (WAL, synchronous=FULL). `path` is created if absent.
StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
StatusOr<std::unique_ptr<ReplayStore>> OpenSqliteReplayStore(const std::string& path, Clock clock);
StatusOr<std::unique_ptr<ExecutionStore>> OpenSqliteExecutionStore(const std::string& path);
StatusOr<std::unique_ptr<PolicyKeyStore>> OpenSqlitePolicyKeyStore(const std::string& path);
StatusOr<std::unique_ptr<ApprovalStore>> OpenSqliteApprovalStore(const std::string& path);
StatusOr<std::unique_ptr<LimitCounter>> OpenSqliteLimitCounter(const std::string& path);
StatusOr<std::unique_ptr<WebhookOutbox>> OpenSqliteWebhookOutbox(const std::string& path);

}  // namespace toani::store
