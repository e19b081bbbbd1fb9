// SQLite implementations of PolicyKeyStore, ApprovalStore and LimitCounter (issue 5).
// Each opens its own connection to the server's database file (WAL); every
// check-and-set runs in one BEGIN IMMEDIATE transaction, so it is atomic across
// connections and processes.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "store/approval_rules.h"
#include "store/sqlite_db.h"
#include "store/store.h"

namespace toani::store {
namespace {

using nlohmann::json;
using sqlite::Db;
using sqlite::Stmt;
using sqlite::Tx;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS policy_keys (
  tenant TEXT NOT NULL, key_id TEXT NOT NULL, public_key TEXT NOT NULL, name TEXT NOT NULL,
  added_by TEXT NOT NULL, added_at TEXT NOT NULL, revoked_at TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (tenant, key_id));
CREATE TRIGGER IF NOT EXISTS policy_keys_no_delete BEFORE DELETE ON policy_keys
  BEGIN SELECT RAISE(ABORT, 'policy keys are revoked, never deleted'); END;
CREATE TABLE IF NOT EXISTS approvals (
  tenant TEXT NOT NULL, id TEXT NOT NULL, agent TEXT NOT NULL, requester TEXT NOT NULL,
  user_name TEXT NOT NULL, action TEXT NOT NULL, params_hash TEXT NOT NULL, params TEXT NOT NULL,
  policy_id TEXT NOT NULL, policy_version INTEGER NOT NULL, risk_tier TEXT NOT NULL,
  approvers_required INTEGER NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
  expires_at INTEGER NOT NULL, poll_interval INTEGER NOT NULL, last_polled_at INTEGER NOT NULL,
  proof TEXT NOT NULL, decided_at TEXT NOT NULL, decided_at_unix INTEGER NOT NULL DEFAULT 0,
  decisions TEXT NOT NULL,
  PRIMARY KEY (tenant, id));
CREATE INDEX IF NOT EXISTS approvals_denials
  ON approvals(tenant, agent, action, params_hash, status, decided_at_unix);
CREATE TRIGGER IF NOT EXISTS approvals_no_delete BEFORE DELETE ON approvals
  BEGIN SELECT RAISE(ABORT, 'approvals are kept'); END;
CREATE TABLE IF NOT EXISTS approval_webhook_outbox (
  tenant TEXT NOT NULL, approval_id TEXT NOT NULL, msg_id TEXT NOT NULL, body TEXT NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  last_error TEXT NOT NULL, PRIMARY KEY (tenant, approval_id));
CREATE TABLE IF NOT EXISTS limit_counters (
  key TEXT NOT NULL, window_start INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  total REAL NOT NULL, PRIMARY KEY (key, window_start));
)sql";

StatusOr<std::unique_ptr<Db>> OpenDb(const std::string& path) {
  auto db = std::make_unique<Db>();
  TOANI_RETURN_IF_ERROR(db->Open(path, kSchema));
  return db;
}

Status Unavailable(const Stmt& s) { return Status::Unavailable("sqlite: " + s.Error()); }

class SqlitePolicyKeyStore final : public PolicyKeyStore {
 public:
  explicit SqlitePolicyKeyStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status AddPolicyKey(const PolicyKeyRecord& r) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "INSERT INTO policy_keys(tenant,key_id,public_key,name,added_by,added_at,revoked_at) "
           "VALUES(?,?,?,?,?,?,'')");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, r.tenant).Bind(2, r.key_id).Bind(3, r.public_key).Bind(4, r.name);
    s.Bind(5, r.added_by).Bind(6, r.added_at);
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT)
      return Status::AlreadyExists("policy key " + r.key_id + " is already registered");
    if (rc != SQLITE_DONE) return Unavailable(s);
    return Status::Ok();
  }

  StatusOr<std::vector<PolicyKeyRecord>> ListPolicyKeys(const std::string& tenant) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT tenant,key_id,public_key,name,added_by,added_at,revoked_at FROM policy_keys "
           "WHERE tenant=? ORDER BY added_at, key_id");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant);
    std::vector<PolicyKeyRecord> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(Row(s));
    if (rc != SQLITE_DONE) return Unavailable(s);
    return out;
  }

  StatusOr<PolicyKeyRecord> GetPolicyKey(const std::string& tenant,
                                         const std::string& key_id) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "SELECT tenant,key_id,public_key,name,added_by,added_at,revoked_at FROM policy_keys "
           "WHERE tenant=? AND key_id=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, key_id);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return Status::NotFound("policy key " + key_id + " is not registered");
    if (rc != SQLITE_ROW) return Unavailable(s);
    return Row(s);
  }

  Status RevokePolicyKey(const std::string& tenant, const std::string& key_id,
                         const std::string& revoked_at) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "UPDATE policy_keys SET revoked_at=? WHERE tenant=? AND key_id=? AND revoked_at=''");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, revoked_at).Bind(2, tenant).Bind(3, key_id);
    if (s.Step() != SQLITE_DONE) return Unavailable(s);
    if (sqlite3_changes(db_->get()) == 1) return Status::Ok();
    Stmt q(db_.get(), "SELECT 1 FROM policy_keys WHERE tenant=? AND key_id=?");
    TOANI_RETURN_IF_ERROR(q.Ready());
    q.Bind(1, tenant).Bind(2, key_id);
    if (q.Step() == SQLITE_ROW)
      return Status::FailedPrecondition("policy key " + key_id + " is already revoked");
    return Status::NotFound("policy key " + key_id + " is not registered");
  }

 private:
  static PolicyKeyRecord Row(Stmt& s) {
    return {s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5), s.Text(6)};
  }
  std::unique_ptr<Db> db_;
};

class SqliteApprovalStore final : public ApprovalStore {
 public:
  explicit SqliteApprovalStore(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status CreateApproval(const ApprovalRecord& r) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "INSERT INTO approvals(tenant,id,agent,requester,user_name,action,params_hash,params,"
           "policy_id,policy_version,risk_tier,approvers_required,status,created_at,expires_at,"
           "poll_interval,last_polled_at,proof,decided_at,decisions) "
           "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, r.tenant).Bind(2, r.id).Bind(3, r.agent).Bind(4, r.requester).Bind(5, r.user);
    s.Bind(6, r.action).Bind(7, r.params_hash).Bind(8, r.params).Bind(9, r.policy_id);
    s.Bind(10, r.policy_version).Bind(11, r.risk_tier).Bind(12, r.approvers_required);
    s.Bind(13, r.status).Bind(14, r.created_at).Bind(15, r.expires_at).Bind(16, r.poll_interval);
    s.Bind(17, r.last_polled_at).Bind(18, r.proof).Bind(19, r.decided_at);
    s.Bind(20, DecisionsJson(r.decisions).dump());
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT) return Status::AlreadyExists("approval " + r.id + " exists");
    if (rc != SQLITE_DONE) return Unavailable(s);
    return Status::Ok();
  }

  StatusOr<ApprovalRecord> GetApproval(const std::string& tenant, const std::string& id) override {
    std::lock_guard<std::mutex> l(db_->mu);
    return GetLocked(tenant, id);
  }

  StatusOr<std::vector<ApprovalRecord>> ListApprovals(const std::string& tenant,
                                                      const std::string& status,
                                                      size_t limit) override {
    std::lock_guard<std::mutex> l(db_->mu);
    const std::string sql = std::string("SELECT ") + kApprovalCols +
                            " FROM approvals WHERE tenant=? AND (?='' OR status=?) "
                            "ORDER BY created_at DESC, id DESC LIMIT ?";
    Stmt s(db_.get(), sql.c_str());
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, status).Bind(3, status).Bind(4, static_cast<int64_t>(limit));
    std::vector<ApprovalRecord> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(Row(s));
    if (rc != SQLITE_DONE) return Unavailable(s);
    return out;
  }

  StatusOr<ApprovalRecord> Decide(
      const std::string& tenant, const std::string& id, const ApprovalDecisionRecord& d,
      int64_t now,
      const std::function<StatusOr<std::string>(const ApprovalRecord&)>& finalize) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Tx tx(db_.get());
    TOANI_RETURN_IF_ERROR(tx.status());
    TOANI_ASSIGN_OR_RETURN(ApprovalRecord r, GetLocked(tenant, id));
    if (r.status == "pending" && now >= r.expires_at) {
      TOANI_RETURN_IF_ERROR(SetStatus(tenant, id, "expired"));
      TOANI_RETURN_IF_ERROR(tx.Commit());
      return Status::FailedPrecondition("approval " + id + " has expired");
    }
    if (r.status != "pending")
      return Status::FailedPrecondition("approval " + id + " is " + r.status + ", not pending");
    TOANI_RETURN_IF_ERROR(ApplyApprovalDecision(&r, d, id));
    int64_t decided_unix = 0;
    if (r.status != "pending") {
      decided_unix = now;
      TOANI_ASSIGN_OR_RETURN(r.proof, finalize(r));
    }
    Stmt u(db_.get(),
           "UPDATE approvals SET status=?, decisions=?, proof=?, decided_at=?, decided_at_unix=? "
           "WHERE tenant=? AND id=? AND status='pending'");
    TOANI_RETURN_IF_ERROR(u.Ready());
    u.Bind(1, r.status).Bind(2, DecisionsJson(r.decisions).dump()).Bind(3, r.proof);
    u.Bind(4, r.decided_at).Bind(5, decided_unix).Bind(6, tenant).Bind(7, id);
    if (u.Step() != SQLITE_DONE) return Unavailable(u);
    TOANI_RETURN_IF_ERROR(tx.Commit());
    return r;
  }

  StatusOr<ApprovalPoll> Poll(const std::string& tenant, const std::string& id,
                              int64_t now) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Tx tx(db_.get());
    TOANI_RETURN_IF_ERROR(tx.status());
    TOANI_ASSIGN_OR_RETURN(ApprovalRecord r, GetLocked(tenant, id));
    ApprovalPoll out;
    if (r.status == "pending" && now >= r.expires_at) {
      TOANI_RETURN_IF_ERROR(SetStatus(tenant, id, "expired"));
      r.status = "expired";
    }
    if (r.last_polled_at != 0 && now < r.last_polled_at + r.poll_interval) {
      out.slow_down = true;
      r.poll_interval = std::min<int64_t>(r.poll_interval + 5, 60);
    }
    r.last_polled_at = now;
    Stmt u(db_.get(),
           "UPDATE approvals SET last_polled_at=?, poll_interval=? WHERE tenant=? AND id=?");
    TOANI_RETURN_IF_ERROR(u.Ready());
    u.Bind(1, now).Bind(2, r.poll_interval).Bind(3, tenant).Bind(4, id);
    if (u.Step() != SQLITE_DONE) return Unavailable(u);
    TOANI_RETURN_IF_ERROR(tx.Commit());
    out.record = std::move(r);
    return out;
  }

  Status Redeem(const std::string& tenant, const std::string& id) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt u(db_.get(),
           "UPDATE approvals SET status='redeemed' WHERE tenant=? AND id=? AND status='approved'");
    TOANI_RETURN_IF_ERROR(u.Ready());
    u.Bind(1, tenant).Bind(2, id);
    if (u.Step() != SQLITE_DONE) return Unavailable(u);
    if (sqlite3_changes(db_->get()) != 1)
      return Status::FailedPrecondition("approval " + id +
                                        " is not approved (or its token was already issued)");
    return Status::Ok();
  }

  StatusOr<ApprovalRecord> RecentDenial(const std::string& tenant, const std::string& agent,
                                        const std::string& action, const std::string& params_hash,
                                        int64_t since) override {
    std::lock_guard<std::mutex> l(db_->mu);
    const std::string sql = std::string("SELECT ") + kApprovalCols +
                            " FROM approvals WHERE tenant=? AND agent=? AND action=? AND "
                            "params_hash=? AND status='denied' AND decided_at_unix>=? "
                            "ORDER BY decided_at_unix DESC LIMIT 1";
    Stmt s(db_.get(), sql.c_str());
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, agent).Bind(3, action).Bind(4, params_hash).Bind(5, since);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return Status::NotFound("no recent denial");
    if (rc != SQLITE_ROW) return Unavailable(s);
    return Row(s);
  }

 private:
  StatusOr<ApprovalRecord> GetLocked(const std::string& tenant, const std::string& id) {
    const std::string sql =
        std::string("SELECT ") + kApprovalCols + " FROM approvals WHERE tenant=? AND id=?";
    Stmt s(db_.get(), sql.c_str());
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, id);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return Status::NotFound("approval " + id + " not found");
    if (rc != SQLITE_ROW) return Unavailable(s);
    return Row(s);
  }
  Status SetStatus(const std::string& tenant, const std::string& id, const char* status) {
    Stmt u(db_.get(), "UPDATE approvals SET status=? WHERE tenant=? AND id=?");
    TOANI_RETURN_IF_ERROR(u.Ready());
    u.Bind(1, std::string(status)).Bind(2, tenant).Bind(3, id);
    if (u.Step() != SQLITE_DONE) return Unavailable(u);
    return Status::Ok();
  }
  static ApprovalRecord Row(Stmt& s) {
    ApprovalRecord r;
    r.tenant = s.Text(0);
    r.id = s.Text(1);
    r.agent = s.Text(2);
    r.requester = s.Text(3);
    r.user = s.Text(4);
    r.action = s.Text(5);
    r.params_hash = s.Text(6);
    r.params = s.Text(7);
    r.policy_id = s.Text(8);
    r.policy_version = s.Int(9);
    r.risk_tier = s.Text(10);
    r.approvers_required = s.Int(11);
    r.status = s.Text(12);
    r.created_at = s.Text(13);
    r.expires_at = s.Int(14);
    r.poll_interval = s.Int(15);
    r.last_polled_at = s.Int(16);
    r.proof = s.Text(17);
    r.decided_at = s.Text(18);
    r.decisions = ParseDecisions(s.Text(19));
    return r;
  }
  std::unique_ptr<Db> db_;
};

class SqliteLimitCounter final : public LimitCounter {
 public:
  explicit SqliteLimitCounter(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  StatusOr<LimitResult> TryAdd(const std::string& key, int64_t window_start, int64_t window_seconds,
                               double amount, double limit) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Tx tx(db_.get());
    TOANI_RETURN_IF_ERROR(tx.status());
    if (++writes_ % 1024 == 0) {  // old windows go now and then
      Stmt gc(db_.get(), "DELETE FROM limit_counters WHERE expires_at < ?");
      TOANI_RETURN_IF_ERROR(gc.Ready());
      gc.Bind(1, window_start - 86400);
      if (gc.Step() != SQLITE_DONE) return Unavailable(gc);
    }
    TOANI_ASSIGN_OR_RETURN(double cur, CurrentLocked(key, window_start));
    LimitResult r;
    r.total = cur;
    if (cur + amount > limit) return r;
    Stmt u(db_.get(),
           "INSERT INTO limit_counters(key,window_start,expires_at,total) VALUES(?,?,?,?) "
           "ON CONFLICT(key,window_start) DO UPDATE SET total=total+excluded.total");
    TOANI_RETURN_IF_ERROR(u.Ready());
    u.Bind(1, key).Bind(2, window_start).Bind(3, window_start + window_seconds).Bind(4, amount);
    if (u.Step() != SQLITE_DONE) return Unavailable(u);
    TOANI_RETURN_IF_ERROR(tx.Commit());
    r.admitted = true;
    r.total = cur + amount;
    return r;
  }

  StatusOr<double> Current(const std::string& key, int64_t window_start) override {
    std::lock_guard<std::mutex> l(db_->mu);
    return CurrentLocked(key, window_start);
  }

 private:
  StatusOr<double> CurrentLocked(const std::string& key, int64_t window_start) {
    Stmt s(db_.get(), "SELECT total FROM limit_counters WHERE key=? AND window_start=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, key).Bind(2, window_start);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return 0.0;
    if (rc != SQLITE_ROW) return Unavailable(s);
    return s.Double(0);
  }
  std::unique_ptr<Db> db_;
  uint64_t writes_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<PolicyKeyStore>> OpenSqlitePolicyKeyStore(const std::string& path) {
  TOANI_ASSIGN_OR_RETURN(auto db, OpenDb(path));
  return std::unique_ptr<PolicyKeyStore>(new SqlitePolicyKeyStore(std::move(db)));
}

class SqliteWebhookOutbox final : public WebhookOutbox {
 public:
  explicit SqliteWebhookOutbox(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  Status Put(const WebhookOutboxRow& r) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "INSERT OR IGNORE INTO approval_webhook_outbox(tenant,approval_id,msg_id,body,attempts,"
           "next_attempt_at,expires_at,last_error) VALUES(?,?,?,?,?,?,?,?)");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, r.tenant).Bind(2, r.approval_id).Bind(3, r.msg_id).Bind(4, r.body);
    s.Bind(5, r.attempts).Bind(6, r.next_attempt_at).Bind(7, r.expires_at).Bind(8, r.last_error);
    if (s.Step() != SQLITE_DONE) return Unavailable(s);
    return Status::Ok();
  }

  StatusOr<std::vector<WebhookOutboxRow>> Due(int64_t now, size_t limit) override {
    return Select("WHERE next_attempt_at<=? ORDER BY next_attempt_at, rowid LIMIT ?", now,
                  static_cast<int64_t>(limit));
  }

  StatusOr<std::vector<WebhookOutboxRow>> List() override {
    return Select("WHERE next_attempt_at>=? ORDER BY rowid LIMIT ?", INT64_MIN, INT64_MAX);
  }

  StatusOr<int64_t> NextDue() override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(), "SELECT MIN(next_attempt_at), COUNT(*) FROM approval_webhook_outbox");
    TOANI_RETURN_IF_ERROR(s.Ready());
    if (s.Step() != SQLITE_ROW) return Unavailable(s);
    if (s.Int(1) == 0) return Status::NotFound("outbox empty");
    return s.Int(0);
  }

  Status Reschedule(const std::string& tenant, const std::string& approval_id, int64_t attempts,
                    int64_t next_attempt_at, const std::string& last_error) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(),
           "UPDATE approval_webhook_outbox SET attempts=?, next_attempt_at=?, last_error=? "
           "WHERE tenant=? AND approval_id=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, attempts)
        .Bind(2, next_attempt_at)
        .Bind(3, last_error)
        .Bind(4, tenant)
        .Bind(5, approval_id);
    if (s.Step() != SQLITE_DONE) return Unavailable(s);
    return Status::Ok();
  }

  Status Remove(const std::string& tenant, const std::string& approval_id) override {
    std::lock_guard<std::mutex> l(db_->mu);
    Stmt s(db_.get(), "DELETE FROM approval_webhook_outbox WHERE tenant=? AND approval_id=?");
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, tenant).Bind(2, approval_id);
    if (s.Step() != SQLITE_DONE) return Unavailable(s);
    return Status::Ok();
  }

 private:
  StatusOr<std::vector<WebhookOutboxRow>> Select(const std::string& where, int64_t a, int64_t b) {
    std::lock_guard<std::mutex> l(db_->mu);
    const std::string sql =
        "SELECT tenant,approval_id,msg_id,body,attempts,next_attempt_at,expires_at,last_error "
        "FROM approval_webhook_outbox " +
        where;
    Stmt s(db_.get(), sql.c_str());
    TOANI_RETURN_IF_ERROR(s.Ready());
    s.Bind(1, a).Bind(2, b);
    std::vector<WebhookOutboxRow> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      out.push_back(
          {s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5), s.Int(6), s.Text(7)});
    }
    if (rc != SQLITE_DONE) return Unavailable(s);
    return out;
  }

  std::unique_ptr<Db> db_;
};

StatusOr<std::unique_ptr<WebhookOutbox>> OpenSqliteWebhookOutbox(const std::string& path) {
  TOANI_ASSIGN_OR_RETURN(auto db, OpenDb(path));
  return std::unique_ptr<WebhookOutbox>(new SqliteWebhookOutbox(std::move(db)));
}

StatusOr<std::unique_ptr<ApprovalStore>> OpenSqliteApprovalStore(const std::string& path) {
  TOANI_ASSIGN_OR_RETURN(auto db, OpenDb(path));
  return std::unique_ptr<ApprovalStore>(new SqliteApprovalStore(std::move(db)));
}

StatusOr<std::unique_ptr<LimitCounter>> OpenSqliteLimitCounter(const std::string& path) {
  TOANI_ASSIGN_OR_RETURN(auto db, OpenDb(path));
  return std::unique_ptr<LimitCounter>(new SqliteLimitCounter(std::move(db)));
}

}  // namespace toani::store
