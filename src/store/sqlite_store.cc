#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "store/sqlite_db.h"
#include "store/store.h"

namespace toani::store {
namespace {

using sqlite::AddColumnIfMissing;
using sqlite::Db;
using sqlite::Stmt;

// Append-only audit: the triggers refuse UPDATE and DELETE even to code that
// tries (there is no such code path in the store either).
constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS credentials (
  tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
  version INTEGER NOT NULL, blob TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (tenant, id));
CREATE TABLE IF NOT EXISTS policies (
  tenant TEXT NOT NULL, policy_id TEXT NOT NULL, version INTEGER NOT NULL,
  document TEXT NOT NULL, applied_at TEXT NOT NULL,
  PRIMARY KEY (tenant, policy_id, version));
CREATE TABLE IF NOT EXISTS audit_log (
  idx INTEGER PRIMARY KEY, entry TEXT NOT NULL, leaf_hash BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TABLE IF NOT EXISTS consumed_tokens (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending_executions (
  execution_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL, action TEXT NOT NULL,
  policy_id TEXT NOT NULL, policy_version INTEGER NOT NULL, params_hash TEXT NOT NULL,
  jti TEXT NOT NULL, secret_credential_id TEXT NOT NULL, started_at TEXT NOT NULL,
  expires_at INTEGER NOT NULL, status TEXT NOT NULL, result TEXT NOT NULL, receipt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_ids (
  execution_id TEXT NOT NULL, webhook_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (execution_id, webhook_id));
)sql";

// Opens `path` with the store's schema and the columns later issues added.
Status OpenDb(Db* db, const std::string& path) {
  TOANI_RETURN_IF_ERROR(db->Open(path, kSchema));
  // Columns added by issue 5 (older databases lack them).
  TOANI_RETURN_IF_ERROR(
      AddColumnIfMissing(db, "credentials", "sensitivity", "TEXT NOT NULL DEFAULT 'standard'"));
  TOANI_RETURN_IF_ERROR(
      AddColumnIfMissing(db, "policies", "signatures", "TEXT NOT NULL DEFAULT ''"));
  return AddColumnIfMissing(db, "policies", "applied_by", "TEXT NOT NULL DEFAULT ''");
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status AddCredential(const CredentialRecord& r) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "INSERT INTO credentials(tenant,id,name,type,version,blob,fingerprint,created_at,"
           "sensitivity) VALUES(?,?,?,?,?,?,?,?,?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, r.tenant)
        .Bind(2, r.id)
        .Bind(3, r.name)
        .Bind(4, r.type)
        .Bind(5, r.version)
        .Bind(6, r.blob);
    s.Bind(7, r.fingerprint).Bind(8, r.created_at).Bind(9, r.sensitivity);
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT)
      return Status::AlreadyExists("credential " + r.id + " already exists");
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return Status::Ok();
  }

  StatusOr<CredentialRecord> GetCredential(const std::string& tenant,
                                           const std::string& id) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT tenant,id,name,type,version,blob,fingerprint,created_at,sensitivity FROM "
           "credentials WHERE "
           "tenant=? AND id=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, id);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return Status::NotFound("credential " + id + " not found");
    if (rc != SQLITE_ROW) return Status::Unavailable("sqlite: " + s.Error());
    return Cred(s);
  }

  StatusOr<std::vector<CredentialRecord>> ListCredentials(const std::string& tenant) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT tenant,id,name,type,version,blob,fingerprint,created_at,sensitivity FROM "
           "credentials WHERE "
           "tenant=? ORDER BY id");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant);
    std::vector<CredentialRecord> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(Cred(s));
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return out;
  }

  Status ReplaceCredentialVersion(const CredentialRecord& r, int64_t expected_version) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "UPDATE credentials SET version=?, blob=?, fingerprint=? "
           "WHERE tenant=? AND id=? AND version=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, r.version).Bind(2, r.blob).Bind(3, r.fingerprint).Bind(4, r.tenant).Bind(5, r.id);
    s.Bind(6, expected_version);
    if (s.Step() != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    if (sqlite3_changes(db_->get()) == 0) {
      return Status::FailedPrecondition("credential " + r.id + " is no longer at version " +
                                        std::to_string(expected_version));
    }
    return Status::Ok();
  }

  StatusOr<int64_t> CountCredentials() override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(), "SELECT COUNT(*) FROM credentials");
    TOANI_RETURN_IF_ERROR(s.Ready());
    if (s.Step() != SQLITE_ROW) return Status::Unavailable("sqlite: " + s.Error());
    return s.Int(0);
  }

  Status PutPolicy(const PolicyRecord& r) override {
    std::lock_guard<std::mutex> l(db_->mu);
    TOANI_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Status st = PutPolicyLocked(r);
    Status end = db_->Exec(st.ok() ? "COMMIT" : "ROLLBACK");
    // Moved after the transaction, whatever its outcome: a reader that saw the old stamp
    // checks the versions again, which is always safe.
    policies_stored_.fetch_add(1);
    TOANI_RETURN_IF_ERROR(end);
    return st;
  }

  StatusOr<std::vector<PolicyRecord>> LatestPolicies(const std::string& tenant) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT tenant,policy_id,version,document,applied_at,signatures,applied_by FROM "
           "policies p WHERE tenant=? AND "
           "version="
           "(SELECT MAX(version) FROM policies q WHERE q.tenant=p.tenant AND "
           "q.policy_id=p.policy_id) ORDER BY policy_id");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant);
    std::vector<PolicyRecord> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(Pol(s));
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return out;
  }

  // Counts the versions this store object has stored: the server is the file's only
  // writer (it locks the file), so nothing else can add one.
  StatusOr<std::optional<int64_t>> PoliciesStamp() override {
    return std::optional<int64_t>(policies_stored_.load());
  }

  StatusOr<std::vector<std::pair<std::string, int64_t>>> LatestPolicyVersions(
      const std::string& tenant) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT policy_id, MAX(version) FROM policies WHERE tenant=? GROUP BY policy_id "
           "ORDER BY policy_id");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant);
    std::vector<std::pair<std::string, int64_t>> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.emplace_back(s.Text(0), s.Int(1));
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return out;
  }

  StatusOr<PolicyRecord> GetPolicy(const std::string& tenant, const std::string& id,
                                   int64_t version) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT tenant,policy_id,version,document,applied_at,signatures,applied_by FROM "
           "policies WHERE tenant=? AND "
           "policy_id=? AND version=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, id).Bind(3, version);
    int rc = s.Step();
    if (rc == SQLITE_DONE)
      return Status::NotFound("policy " + id + " v" + std::to_string(version) + " not found");
    if (rc != SQLITE_ROW) return Status::Unavailable("sqlite: " + s.Error());
    return Pol(s);
  }

  StatusOr<std::vector<PolicyRecord>> PolicyHistory(const std::string& tenant,
                                                    const std::string& id) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(
        db_.get(),
        "SELECT tenant,policy_id,version,document,applied_at,signatures,applied_by FROM policies "
        "WHERE tenant=? AND policy_id=? ORDER BY version");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, id);
    std::vector<PolicyRecord> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(Pol(s));
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    if (out.empty()) return Status::NotFound("policy " + id + " not found");
    return out;
  }

  Status AppendAudit(const AuditRow& row) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(), "INSERT INTO audit_log(idx, entry, leaf_hash) VALUES(?,?,?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, static_cast<int64_t>(row.index))
        .Bind(2, row.entry)
        .BindBlob(3, row.leaf_hash.data(), 32);
    // synchronous=FULL: the commit of this implicit transaction is fsync'd
    // before sqlite3_step returns.
    if (s.Step() != SQLITE_DONE)
      return Status::Unavailable("audit: append not durable: " + s.Error());
    return Status::Ok();
  }

  StatusOr<std::vector<AuditRow>> ReadAudit(uint64_t from, uint64_t to) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT idx, entry, leaf_hash FROM audit_log WHERE idx >= ? AND idx < ? ORDER BY idx");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, static_cast<int64_t>(from)).Bind(2, static_cast<int64_t>(to));
    std::vector<AuditRow> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      AuditRow r;
      r.index = static_cast<uint64_t>(s.Int(0));
      r.entry = s.Text(1);
      size_t n = 0;
      const void* p = s.Blob(2, &n);
      if (n != 32)
        return Status::Internal("audit: corrupt leaf hash at " + std::to_string(r.index));
      std::memcpy(r.leaf_hash.data(), p, 32);
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return out;
  }

  StatusOr<uint64_t> AuditSize() override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(), "SELECT COUNT(*) FROM audit_log");
    TOANI_RETURN_IF_ERROR(s.Ready());
    if (s.Step() != SQLITE_ROW) return Status::Unavailable("sqlite: " + s.Error());
    return static_cast<uint64_t>(s.Int(0));
  }

 private:
  static CredentialRecord Cred(Stmt& s) {
    return {s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4),
            s.Text(5), s.Text(6), s.Text(7), s.Text(8)};
  }
  static PolicyRecord Pol(Stmt& s) {
    return {s.Text(0), s.Text(1), s.Int(2), s.Text(3), s.Text(4), s.Text(5), s.Text(6)};
  }

  Status PutPolicyLocked(const PolicyRecord& r) {
    Stmt q(db_.get(),
           "SELECT COALESCE(MAX(version), 0) FROM policies WHERE tenant=? AND policy_id=?");
    TOANI_RETURN_IF_ERROR(q.Ready());
    q.Bind(1, r.tenant).Bind(2, r.policy_id);
    if (q.Step() != SQLITE_ROW) return Status::Unavailable("sqlite: " + q.Error());
    int64_t current = q.Int(0);
    if (r.version <= current) {
      return Status::FailedPrecondition(
          "policy " + r.policy_id + " version " + std::to_string(r.version) +
          " is not newer than stored version " + std::to_string(current));
    }
    Stmt s(db_.get(),
           "INSERT INTO policies(tenant,policy_id,version,document,applied_at,signatures,"
           "applied_by) VALUES(?,?,?,?,?,?,?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, r.tenant)
        .Bind(2, r.policy_id)
        .Bind(3, r.version)
        .Bind(4, r.document)
        .Bind(5, r.applied_at)
        .Bind(6, r.signatures)
        .Bind(7, r.applied_by);
    if (s.Step() != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return Status::Ok();
  }

  std::unique_ptr<Db> db_;
  std::atomic<int64_t> policies_stored_{0};  // PutPolicy calls (PoliciesStamp)
};

class SqliteReplayStore final : public ReplayStore {
 public:
  SqliteReplayStore(std::unique_ptr<Db> db, Clock clock)
      : db_(std::move(db)), clock_(std::move(clock)) {}

  Status ConsumeOnce(const std::string& jti, SysTime expires_at) override {
    std::lock_guard<std::mutex> l(db_->mu);
    // Expired rows can go: a token past exp is refused by verification anyway.
    {
      Stmt gc(db_.get(), "DELETE FROM consumed_tokens WHERE expires_at < ?");
      if (gc.Ready().ok()) {
        gc.Bind(1, UnixSeconds(clock_()) - 60);
        gc.Step();
      }
    }
    Stmt s(db_.get(), "INSERT INTO consumed_tokens(jti, expires_at) VALUES(?, ?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, jti).Bind(2, UnixSeconds(expires_at));
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT) return Status::AlreadyExists("token already used");
    if (rc != SQLITE_DONE) return Status::Unavailable("replay store: " + s.Error());
    return Status::Ok();
  }

 private:
  std::unique_ptr<Db> db_;
  Clock clock_;
};

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  auto db = std::make_unique<Db>();
  TOANI_RETURN_IF_ERROR(OpenDb(db.get(), path));
  return std::unique_ptr<Store>(new SqliteStore(std::move(db)));
}

class SqliteExecutionStore final : public ExecutionStore {
 public:
  explicit SqliteExecutionStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status PutPending(const PendingExecution& e) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "INSERT INTO pending_executions(execution_id,tenant,agent,action,policy_id,"
           "policy_version,params_hash,jti,secret_credential_id,started_at,expires_at,status,"
           "result,receipt) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, e.execution_id).Bind(2, e.tenant).Bind(3, e.agent).Bind(4, e.action);
    s.Bind(5, e.policy_id).Bind(6, e.policy_version).Bind(7, e.params_hash).Bind(8, e.jti);
    s.Bind(9, e.secret_credential_id).Bind(10, e.started_at).Bind(11, e.expires_at);
    s.Bind(12, e.status).Bind(13, e.result).Bind(14, e.receipt);
    const int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT) return Status::AlreadyExists("execution exists");
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return Status::Ok();
  }

  StatusOr<PendingExecution> GetExecution(const std::string& id) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT execution_id,tenant,agent,action,policy_id,policy_version,params_hash,jti,"
           "secret_credential_id,started_at,expires_at,status,result,receipt "
           "FROM pending_executions WHERE execution_id=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, id);
    const int rc = s.Step();
    if (rc == SQLITE_DONE) return Status::NotFound("execution " + id + " not found");
    if (rc != SQLITE_ROW) return Status::Unavailable("sqlite: " + s.Error());
    PendingExecution e;
    e.execution_id = s.Text(0);
    e.tenant = s.Text(1);
    e.agent = s.Text(2);
    e.action = s.Text(3);
    e.policy_id = s.Text(4);
    e.policy_version = s.Int(5);
    e.params_hash = s.Text(6);
    e.jti = s.Text(7);
    e.secret_credential_id = s.Text(8);
    e.started_at = s.Text(9);
    e.expires_at = s.Int(10);
    e.status = s.Text(11);
    e.result = s.Text(12);
    e.receipt = s.Text(13);
    return e;
  }

  Status FinishExecution(const std::string& id, const std::string& status,
                         const std::string& result, const std::string& receipt) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "UPDATE pending_executions SET status=?, result=?, receipt=? "
           "WHERE execution_id=? AND status='pending'");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, status).Bind(2, result).Bind(3, receipt).Bind(4, id);
    if (s.Step() != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    if (sqlite3_changes(db_->get()) == 0) {
      return Status::FailedPrecondition("execution " + id + " is not pending");
    }
    return Status::Ok();
  }

  Status RememberWebhookId(const std::string& id, const std::string& webhook_id,
                           SysTime expires_at) override {
    std::lock_guard<std::mutex> l(db_->mu);
    const int64_t exp = UnixSeconds(expires_at);
    {
      Stmt del(db_.get(), "DELETE FROM webhook_ids WHERE expires_at < ?");
      TOANI_RETURN_IF_ERROR(del.Ready());
      del.Bind(1, UnixSeconds(std::chrono::system_clock::now()) - 86400);
      (void)del.Step();
    }
    Stmt s(db_.get(), "INSERT INTO webhook_ids(execution_id,webhook_id,expires_at) VALUES(?,?,?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, id).Bind(2, webhook_id).Bind(3, exp);
    const int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT) return Status::AlreadyExists("webhook id already seen");
    if (rc != SQLITE_DONE) return Status::Unavailable("sqlite: " + s.Error());
    return Status::Ok();
  }

 private:
  std::unique_ptr<Db> db_;
};

StatusOr<std::unique_ptr<ExecutionStore>> OpenSqliteExecutionStore(const std::string& path) {
  auto db = std::make_unique<Db>();
  TOANI_RETURN_IF_ERROR(OpenDb(db.get(), path));
  return std::unique_ptr<ExecutionStore>(new SqliteExecutionStore(std::move(db)));
}

StatusOr<std::unique_ptr<ReplayStore>> OpenSqliteReplayStore(const std::string& path, Clock clock) {
  auto db = std::make_unique<Db>();
  TOANI_RETURN_IF_ERROR(OpenDb(db.get(), path));
  return std::unique_ptr<ReplayStore>(new SqliteReplayStore(std::move(db), std::move(clock)));
}

}  // namespace toani::store
