#include "store/pg_store.h"

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "store/pg.h"
#include "store/pg_internal.h"

namespace toani::store {
namespace {

using nlohmann::json;

// Advisory lock keys ("toani" in ASCII, then a role byte).
constexpr int64_t kMigrationLock = 0x746f616e6901;
constexpr int64_t kSequencerLock = 0x746f616e6902;

// Schema migrations, applied in order, each once (toani_schema_migrations). Never edit
// a released migration: add the next one. docs/storage.md §1 describes the tables.
struct Migration {
  int version;
  const char* sql;
};
const Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE credentials (
  tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
  version BIGINT NOT NULL, blob TEXT NOT NULL, fingerprint TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (tenant, id));
CREATE TABLE policies (
  tenant TEXT NOT NULL, policy_id TEXT NOT NULL, version BIGINT NOT NULL,
  document TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (tenant, policy_id, version));
CREATE TABLE audit_log (
  idx BIGINT PRIMARY KEY CHECK (idx >= 0), entry TEXT NOT NULL,
  leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32), handoff_id BIGINT UNIQUE);
CREATE TABLE audit_tiles (
  level INTEGER NOT NULL, n BIGINT NOT NULL, hashes BYTEA NOT NULL, PRIMARY KEY (level, n));
CREATE FUNCTION toani_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION toani_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION toani_append_only();
CREATE TRIGGER audit_tiles_append_only BEFORE UPDATE OR DELETE ON audit_tiles
  FOR EACH ROW EXECUTE FUNCTION toani_append_only();
CREATE TRIGGER audit_tiles_no_truncate BEFORE TRUNCATE ON audit_tiles
  FOR EACH STATEMENT EXECUTE FUNCTION toani_append_only();
CREATE TABLE audit_handoff (
  id BIGSERIAL PRIMARY KEY, fields TEXT NOT NULL, node TEXT NOT NULL,
  queued_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE consumed_tokens (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE TABLE cluster (key TEXT PRIMARY KEY, value TEXT NOT NULL);
)sql"},
    // Issue 5: credential sensitivity; policy signatures and who applied them.
    {2, R"sql(
ALTER TABLE credentials ADD COLUMN sensitivity TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE policies ADD COLUMN signatures TEXT NOT NULL DEFAULT '';
ALTER TABLE policies ADD COLUMN applied_by TEXT NOT NULL DEFAULT '';
CREATE TABLE policy_keys (
  tenant TEXT NOT NULL, key_id TEXT NOT NULL, public_key TEXT NOT NULL, name TEXT NOT NULL,
  added_by TEXT NOT NULL, added_at TEXT NOT NULL, revoked_at TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (tenant, key_id));
)sql"},
    // Issue 5's approvals and limit counters and issue 7's pending (webhook) executions,
    // shared by every node: an approval granted on one node, a rate limit counted on all,
    // a callback arriving at any node.
    {3, R"sql(
CREATE FUNCTION toani_never_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER policy_keys_no_delete BEFORE DELETE ON policy_keys
  FOR EACH ROW EXECUTE FUNCTION toani_never_delete();
CREATE TABLE approvals (
  tenant TEXT NOT NULL, id TEXT NOT NULL, agent TEXT NOT NULL, requester TEXT NOT NULL,
  user_name TEXT NOT NULL, action TEXT NOT NULL, params_hash TEXT NOT NULL, params TEXT NOT NULL,
  policy_id TEXT NOT NULL, policy_version BIGINT NOT NULL, risk_tier TEXT NOT NULL,
  approvers_required BIGINT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
  expires_at BIGINT NOT NULL, poll_interval BIGINT NOT NULL, last_polled_at BIGINT NOT NULL,
  proof TEXT NOT NULL, decided_at TEXT NOT NULL, decided_at_unix BIGINT NOT NULL DEFAULT 0,
  decisions TEXT NOT NULL, PRIMARY KEY (tenant, id));
CREATE INDEX approvals_denials
  ON approvals(tenant, agent, action, params_hash, status, decided_at_unix);
CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
  FOR EACH ROW EXECUTE FUNCTION toani_never_delete();
CREATE TABLE limit_counters (
  key TEXT NOT NULL, window_start BIGINT NOT NULL, expires_at BIGINT NOT NULL,
  total DOUBLE PRECISION NOT NULL, PRIMARY KEY (key, window_start));
CREATE TABLE pending_executions (
  execution_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL, action TEXT NOT NULL,
  policy_id TEXT NOT NULL, policy_version BIGINT NOT NULL, params_hash TEXT NOT NULL,
  jti TEXT NOT NULL, secret_credential_id TEXT NOT NULL, started_at TEXT NOT NULL,
  expires_at BIGINT NOT NULL, status TEXT NOT NULL, result TEXT NOT NULL, receipt TEXT NOT NULL);
CREATE TABLE webhook_ids (
  execution_id TEXT NOT NULL, webhook_id TEXT NOT NULL, expires_at BIGINT NOT NULL,
  PRIMARY KEY (execution_id, webhook_id));
)sql"},
};

Status Broken(const std::string& what) { return Status::Unavailable("postgres: " + what); }

// Rows and tiles as one JSON parameter, so a batch is one INSERT, not one per row.
std::string RowsJson(const std::vector<AuditRow>& rows) {
  json a = json::array();
  for (const auto& r : rows) {
    json o = {{"idx", r.index},
              {"entry", r.entry},
              {"leaf_hash", HexEncode(std::span<const uint8_t>(r.leaf_hash.data(), 32))}};
    if (r.handoff_id != 0) o["handoff_id"] = r.handoff_id;
    a.push_back(std::move(o));
  }
  return a.dump();
}
std::string TilesJson(const std::vector<AuditTileRow>& tiles) {
  json a = json::array();
  for (const auto& t : tiles) {
    a.push_back(
        {{"level", t.level},
         {"n", t.n},
         {"hashes", HexEncode(std::span<const uint8_t>(
                        reinterpret_cast<const uint8_t*>(t.hashes.data()), t.hashes.size()))}});
  }
  return a.dump();
}

constexpr const char* kInsertRows =
    "INSERT INTO audit_log(idx, entry, leaf_hash, handoff_id) "
    "SELECT idx, entry, decode(leaf_hash, 'hex'), handoff_id FROM "
    "json_to_recordset($1::json) AS x(idx BIGINT, entry TEXT, leaf_hash TEXT, handoff_id BIGINT)";
constexpr const char* kInsertTiles =
    "INSERT INTO audit_tiles(level, n, hashes) SELECT level, n, decode(hashes, 'hex') FROM "
    "json_to_recordset($1::json) AS x(level INTEGER, n BIGINT, hashes TEXT)";

Status InsertBatch(PgConn& c, const std::vector<AuditRow>& rows,
                   const std::vector<AuditTileRow>& tiles) {
  if (rows.empty()) return Status::Ok();
  // Appends exactly at the end: the previous index must exist (the primary key refuses
  // a repeat).
  if (rows.front().index > 0) {
    TOANI_ASSIGN_OR_RETURN(PgResult prev,
                           c.Exec("SELECT 1 FROM audit_log WHERE idx = $1",
                                  {PgParam::Int(static_cast<int64_t>(rows.front().index - 1))}));
    if (prev.rows() != 1)
      return Status::FailedPrecondition("audit: append at " + std::to_string(rows.front().index) +
                                        " would leave a gap");
  }
  auto r = c.Exec(kInsertRows, {PgParam::Text(RowsJson(rows))});
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kAlreadyExists)
      return Status::FailedPrecondition("audit: index already taken: " + r.status().message());
    return r.status();
  }
  if (!tiles.empty())
    TOANI_RETURN_IF_ERROR(c.Exec(kInsertTiles, {PgParam::Text(TilesJson(tiles))}).status());
  return Status::Ok();
}

StatusOr<std::vector<AuditRow>> SelectRows(PgConn& c, uint64_t from, uint64_t to) {
  TOANI_ASSIGN_OR_RETURN(
      PgResult r,
      c.Exec("SELECT idx, entry, leaf_hash, COALESCE(handoff_id, 0) FROM audit_log "
             "WHERE idx >= $1 AND idx < $2 ORDER BY idx",
             {PgParam::Int(static_cast<int64_t>(from)), PgParam::Int(static_cast<int64_t>(to))}));
  std::vector<AuditRow> out(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    AuditRow& row = out[static_cast<size_t>(i)];
    row.index = static_cast<uint64_t>(r.Int(i, 0));
    row.entry = r.Text(i, 1);
    std::string h = r.Bytes(i, 2);
    // A wrong-size hash is kept as all-zero so the reader reports the mismatch.
    if (h.size() == 32) std::memcpy(row.leaf_hash.data(), h.data(), 32);
    row.handoff_id = r.Int(i, 3);
  }
  return out;
}

StatusOr<uint64_t> SelectSize(PgConn& c) {
  TOANI_ASSIGN_OR_RETURN(PgResult r, c.Exec("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log"));
  return static_cast<uint64_t>(r.Int(0, 0));
}

class PgStoreImpl final : public Store {
 public:
  explicit PgStoreImpl(PgPool* pool) : pool_(pool) {}

  Status AddCredential(const CredentialRecord& r) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    auto res = c->Exec(
        "INSERT INTO credentials(tenant,id,name,type,version,blob,fingerprint,created_at,"
        "sensitivity) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        {PgParam::Text(r.tenant), PgParam::Text(r.id), PgParam::Text(r.name), PgParam::Text(r.type),
         PgParam::Int(r.version), PgParam::Text(r.blob), PgParam::Text(r.fingerprint),
         PgParam::Text(r.created_at), PgParam::Text(r.sensitivity)});
    if (res.status().code() == StatusCode::kAlreadyExists)
      return Status::AlreadyExists("credential " + r.id + " already exists");
    return res.status();
  }

  StatusOr<CredentialRecord> GetCredential(const std::string& tenant,
                                           const std::string& id) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r,
        c->Exec("SELECT tenant,id,name,type,version,blob,fingerprint,created_at,sensitivity "
                "FROM credentials WHERE tenant=$1 AND id=$2",
                {PgParam::Text(tenant), PgParam::Text(id)}));
    if (r.rows() == 0) return Status::NotFound("credential " + id + " not found");
    return Cred(r, 0);
  }

  StatusOr<std::vector<CredentialRecord>> ListCredentials(const std::string& tenant) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r,
        c->Exec("SELECT tenant,id,name,type,version,blob,fingerprint,created_at,sensitivity "
                "FROM credentials WHERE tenant=$1 ORDER BY id",
                {PgParam::Text(tenant)}));
    std::vector<CredentialRecord> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(Cred(r, i));
    return out;
  }

  StatusOr<int64_t> CountCredentials() override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(PgResult r, c->Exec("SELECT COUNT(*) FROM credentials"));
    return r.Int(0, 0);
  }

  Status PutPolicy(const PolicyRecord& rec) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return PgTransaction(*c, [&]() -> Status {
      // Serialises writers of this one policy across every node.
      TOANI_RETURN_IF_ERROR(c->Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                    {PgParam::Text(rec.tenant + "\n" + rec.policy_id)})
                                .status());
      TOANI_ASSIGN_OR_RETURN(
          PgResult q, c->Exec("SELECT COALESCE(MAX(version), 0) FROM policies WHERE tenant=$1 "
                              "AND policy_id=$2",
                              {PgParam::Text(rec.tenant), PgParam::Text(rec.policy_id)}));
      const int64_t current = q.Int(0, 0);
      if (rec.version <= current) {
        return Status::FailedPrecondition(
            "policy " + rec.policy_id + " version " + std::to_string(rec.version) +
            " is not newer than stored version " + std::to_string(current));
      }
      return c
          ->Exec(
              "INSERT INTO policies(tenant,policy_id,version,document,applied_at,signatures,"
              "applied_by) VALUES($1,$2,$3,$4,$5,$6,$7)",
              {PgParam::Text(rec.tenant), PgParam::Text(rec.policy_id), PgParam::Int(rec.version),
               PgParam::Text(rec.document), PgParam::Text(rec.applied_at),
               PgParam::Text(rec.signatures), PgParam::Text(rec.applied_by)})
          .status();
    });
  }

  StatusOr<std::vector<PolicyRecord>> LatestPolicies(const std::string& tenant) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, c->Exec("SELECT DISTINCT ON (policy_id) "
                            "tenant,policy_id,version,document,applied_at,signatures,applied_by "
                            "FROM policies WHERE tenant=$1 ORDER BY policy_id, version DESC",
                            {PgParam::Text(tenant)}));
    std::vector<PolicyRecord> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(Pol(r, i));
    return out;
  }

  StatusOr<std::vector<std::pair<std::string, int64_t>>> LatestPolicyVersions(
      const std::string& tenant) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(PgResult r, c->Exec("SELECT policy_id, MAX(version) FROM policies "
                                               "WHERE tenant=$1 GROUP BY policy_id ORDER BY "
                                               "policy_id",
                                               {PgParam::Text(tenant)}));
    std::vector<std::pair<std::string, int64_t>> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.Text(i, 0), r.Int(i, 1));
    return out;
  }

  StatusOr<PolicyRecord> GetPolicy(const std::string& tenant, const std::string& id,
                                   int64_t version) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r,
        c->Exec("SELECT tenant,policy_id,version,document,applied_at,signatures,applied_by FROM "
                "policies "
                "WHERE tenant=$1 AND policy_id=$2 AND version=$3",
                {PgParam::Text(tenant), PgParam::Text(id), PgParam::Int(version)}));
    if (r.rows() == 0)
      return Status::NotFound("policy " + id + " v" + std::to_string(version) + " not found");
    return Pol(r, 0);
  }

  StatusOr<std::vector<PolicyRecord>> PolicyHistory(const std::string& tenant,
                                                    const std::string& id) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(PgResult r,
                           c->Exec("SELECT tenant,policy_id,version,document,applied_at,signatures,"
                                   "applied_by FROM policies WHERE tenant=$1 AND policy_id=$2 "
                                   "ORDER BY version",
                                   {PgParam::Text(tenant), PgParam::Text(id)}));
    if (r.rows() == 0) return Status::NotFound("policy " + id + " not found");
    std::vector<PolicyRecord> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(Pol(r, i));
    return out;
  }

  Status AppendAudit(const AuditRow& row) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return PgTransaction(*c, [&] { return InsertBatch(*c, {row}, {}); });
  }

  StatusOr<std::vector<AuditRow>> ReadAudit(uint64_t from, uint64_t to) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return SelectRows(*c, from, to);
  }

  StatusOr<uint64_t> AuditSize() override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return SelectSize(*c);
  }

 private:
  static CredentialRecord Cred(const PgResult& r, int i) {
    return {r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Int(i, 4),
            r.Text(i, 5), r.Text(i, 6), r.Text(i, 7), r.Text(i, 8)};
  }
  static PolicyRecord Pol(const PgResult& r, int i) {
    return {r.Text(i, 0), r.Text(i, 1), r.Int(i, 2), r.Text(i, 3),
            r.Text(i, 4), r.Text(i, 5), r.Text(i, 6)};
  }
  PgPool* pool_;
};

// Registered policy-admin keys (issue 5): revoked, never deleted.
class PgPolicyKeyStoreImpl final : public PolicyKeyStore {
 public:
  explicit PgPolicyKeyStoreImpl(PgPool* pool) : pool_(pool) {}

  Status AddPolicyKey(const PolicyKeyRecord& r) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    auto res = c->Exec(
        "INSERT INTO policy_keys(tenant,key_id,public_key,name,added_by,added_at,revoked_at) "
        "VALUES($1,$2,$3,$4,$5,$6,'')",
        {PgParam::Text(r.tenant), PgParam::Text(r.key_id), PgParam::Text(r.public_key),
         PgParam::Text(r.name), PgParam::Text(r.added_by), PgParam::Text(r.added_at)});
    if (res.status().code() == StatusCode::kAlreadyExists)
      return Status::AlreadyExists("policy key " + r.key_id + " is already registered");
    return res.status();
  }
  StatusOr<std::vector<PolicyKeyRecord>> ListPolicyKeys(const std::string& tenant) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, c->Exec("SELECT tenant,key_id,public_key,name,added_by,added_at,revoked_at "
                            "FROM policy_keys WHERE tenant=$1 ORDER BY added_at, key_id",
                            {PgParam::Text(tenant)}));
    std::vector<PolicyKeyRecord> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(Row(r, i));
    return out;
  }
  StatusOr<PolicyKeyRecord> GetPolicyKey(const std::string& tenant,
                                         const std::string& key_id) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, c->Exec("SELECT tenant,key_id,public_key,name,added_by,added_at,revoked_at "
                            "FROM policy_keys WHERE tenant=$1 AND key_id=$2",
                            {PgParam::Text(tenant), PgParam::Text(key_id)}));
    if (r.rows() == 0) return Status::NotFound("policy key " + key_id + " is not registered");
    return Row(r, 0);
  }
  Status RevokePolicyKey(const std::string& tenant, const std::string& key_id,
                         const std::string& revoked_at) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r,
        c->Exec("UPDATE policy_keys SET revoked_at=$3 WHERE tenant=$1 AND key_id=$2 "
                "AND revoked_at='' RETURNING key_id",
                {PgParam::Text(tenant), PgParam::Text(key_id), PgParam::Text(revoked_at)}));
    if (r.rows() == 1) return Status::Ok();
    TOANI_ASSIGN_OR_RETURN(PolicyKeyRecord k, GetPolicyKey(tenant, key_id));
    return Status::FailedPrecondition("policy key " + k.key_id + " is already revoked");
  }

 private:
  static PolicyKeyRecord Row(const PgResult& r, int i) {
    return {r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3),
            r.Text(i, 4), r.Text(i, 5), r.Text(i, 6)};
  }
  PgPool* pool_;
};

class PgAuditStoreImpl final : public AuditStore {
 public:
  explicit PgAuditStoreImpl(PgPool* pool) : pool_(pool) {}

  Status AppendBatch(const std::vector<AuditRow>& rows,
                     const std::vector<AuditTileRow>& tiles) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return PgTransaction(*c, [&] { return InsertBatch(*c, rows, tiles); });
  }
  StatusOr<std::vector<AuditRow>> ReadEntries(uint64_t from, uint64_t to) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return SelectRows(*c, from, to);
  }
  StatusOr<uint64_t> Size() override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return SelectSize(*c);
  }
  StatusOr<std::vector<AuditTileRow>> ReadTiles() override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(PgResult r,
                           c->Exec("SELECT level, n, hashes FROM audit_tiles ORDER BY level, n"));
    std::vector<AuditTileRow> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(
          {static_cast<int>(r.Int(i, 0)), static_cast<uint64_t>(r.Int(i, 1)), r.Bytes(i, 2)});
    }
    return out;
  }

 private:
  PgPool* pool_;
};

class PgReplayStoreImpl final : public ReplayStore {
 public:
  PgReplayStoreImpl(PgPool* pool, Clock clock) : pool_(pool), clock_(std::move(clock)) {}
  Status ConsumeOnce(const std::string& jti, SysTime expires_at) override {
    auto c = pool_->Acquire();
    if (!c.ok()) return Status::Unavailable("replay store: " + c.status().message());
    if (++calls_ % 1024 == 0) {
      (void)(*c)->Exec("DELETE FROM consumed_tokens WHERE expires_at < $1",
                       {PgParam::Int(UnixSeconds(clock_()) - 60)});
    }
    auto r = (*c)->Exec(
        "INSERT INTO consumed_tokens(jti, expires_at) VALUES($1, $2) ON CONFLICT DO NOTHING "
        "RETURNING 1",
        {PgParam::Text(jti), PgParam::Int(UnixSeconds(expires_at))});
    if (!r.ok()) return Status::Unavailable("replay store: " + r.status().message());
    // ON CONFLICT DO NOTHING: zero rows inserted means another node consumed it first.
    if (r->rows() == 0) return Status::AlreadyExists("token already used");
    return Status::Ok();
  }

 private:
  PgPool* pool_;
  Clock clock_;
  std::atomic<uint64_t> calls_{0};
};

// The cluster hand-off: a queue table, a LISTEN thread and the sequencer lock's session.
class PgHandoffImpl final : public AuditHandoff {
 public:
  PgHandoffImpl(PgPool* pool, std::string url, std::string node)
      : pool_(pool), url_(std::move(url)), node_(std::move(node)) {
    listener_ = std::thread([this] { Listen(); });
  }
  ~PgHandoffImpl() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    listener_.join();
  }

  StatusOr<int64_t> Enqueue(const std::string& fields) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, c->Exec("WITH ins AS (INSERT INTO audit_handoff(fields, node) VALUES($1, $2) "
                            "RETURNING id) SELECT id, pg_notify('toani_audit', '') FROM ins",
                            {PgParam::Text(fields), PgParam::Text(node_)}));
    if (r.rows() != 1) return Broken("hand-off insert returned no id");
    return r.Int(0, 0);
  }

  uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds wait) override {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, wait, [&] { return gen_ != seen || stop_; });
    return gen_;
  }

  StatusOr<bool> TryLead() override {
    std::lock_guard<std::mutex> l(lead_mu_);
    if (lead_ && !lead_->Broken() && leading_) return true;
    leading_ = false;
    if (!lead_ || lead_->Broken()) {
      lead_.reset();
      TOANI_ASSIGN_OR_RETURN(lead_, PgConn::Connect(url_));
    }
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, lead_->Exec("SELECT pg_try_advisory_lock($1)", {PgParam::Int(kSequencerLock)}));
    leading_ = r.rows() == 1 && r.Text(0, 0) == "t";
    return leading_;
  }

  StatusOr<std::vector<HandedEntry>> Queued(size_t max) override {
    std::lock_guard<std::mutex> l(lead_mu_);
    if (!leading_ || !lead_) return Status::FailedPrecondition("not the audit sequencer");
    TOANI_ASSIGN_OR_RETURN(PgResult r,
                           lead_->Exec("SELECT id, fields FROM audit_handoff ORDER BY id LIMIT $1",
                                       {PgParam::Int(static_cast<int64_t>(max))}));
    std::vector<HandedEntry> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.Int(i, 0), r.Text(i, 1)});
    if (lead_->Broken()) leading_ = false;
    return out;
  }

  Status AppendSequenced(const std::vector<AuditRow>& rows,
                         const std::vector<AuditTileRow>& tiles) override {
    std::lock_guard<std::mutex> l(lead_mu_);
    if (!leading_ || !lead_) return Status::FailedPrecondition("not the audit sequencer");
    std::string ids = "{";
    for (size_t i = 0; i < rows.size(); ++i) {
      if (i) ids += ",";
      ids += std::to_string(rows[i].handoff_id);
    }
    ids += "}";
    Status st = PgTransaction(*lead_, [&]() -> Status {
      TOANI_RETURN_IF_ERROR(InsertBatch(*lead_, rows, tiles));
      TOANI_ASSIGN_OR_RETURN(PgResult d,
                             lead_->Exec("DELETE FROM audit_handoff WHERE id = ANY($1::bigint[])",
                                         {PgParam::Text(ids)}));
      (void)d;
      return lead_->Exec("SELECT pg_notify('toani_audit', '')").status();
    });
    if (lead_->Broken()) leading_ = false;
    return st;
  }

 private:
  void Bump() {
    std::lock_guard<std::mutex> l(mu_);
    ++gen_;
    cv_.notify_all();
  }

  void Listen() {
    std::unique_ptr<PgConn> c;
    for (;;) {
      {
        std::lock_guard<std::mutex> l(mu_);
        if (stop_) return;
      }
      if (!c || c->Broken()) {
        c.reset();
        auto nc = PgConn::Connect(url_);
        if (!nc.ok() || !(*nc)->ExecScript("LISTEN toani_audit").ok()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          continue;
        }
        c = std::move(*nc);
        Bump();  // anything may have happened while we were not listening
      }
      pollfd p{c->Socket(), POLLIN, 0};
      int n = ::poll(&p, 1, 200);
      if (n <= 0) continue;
      auto got = c->ConsumeNotifications();
      if (!got.ok()) {
        c.reset();
        continue;
      }
      if (!got->empty()) Bump();
    }
  }

  PgPool* pool_;
  std::string url_, node_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t gen_ = 0;
  bool stop_ = false;
  std::thread listener_;
  std::mutex lead_mu_;
  std::unique_ptr<PgConn> lead_;
  bool leading_ = false;
};

class PgDatabaseImpl final : public PgDatabase {
 public:
  PgDatabaseImpl(const std::string& url, const std::string& node, Clock clock)
      : pool_(url, 8),
        store_(&pool_),
        audit_(&pool_),
        replay_(&pool_, std::move(clock)),
        policy_keys_(&pool_),
        approvals_(NewPgApprovalStore(&pool_)),
        limits_(NewPgLimitCounter(&pool_)),
        executions_(NewPgExecutionStore(&pool_)),
        url_(url),
        node_(node) {}

  Status Migrate() {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    return PgTransaction(*c, [&]() -> Status {
      TOANI_RETURN_IF_ERROR(
          c->Exec("SELECT pg_advisory_xact_lock($1)", {PgParam::Int(kMigrationLock)}).status());
      TOANI_RETURN_IF_ERROR(c->ExecScript(
          "CREATE TABLE IF NOT EXISTS toani_schema_migrations (version INTEGER PRIMARY KEY, "
          "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"));
      TOANI_ASSIGN_OR_RETURN(
          PgResult r, c->Exec("SELECT COALESCE(MAX(version), 0) FROM toani_schema_migrations"));
      int have = static_cast<int>(r.Int(0, 0));
      int newest = 0;
      for (const Migration& m : kMigrations) newest = std::max(newest, m.version);
      if (have > newest) {
        return Status::FailedPrecondition("postgres: the database schema is version " +
                                          std::to_string(have) + ", newer than this build knows (" +
                                          std::to_string(newest) + "): upgrade toani");
      }
      for (const Migration& m : kMigrations) {
        if (m.version <= have) continue;
        Status st = c->ExecScript(m.sql);
        if (!st.ok())
          return Status::Unavailable("migration " + std::to_string(m.version) + ": " +
                                     st.message());
        TOANI_RETURN_IF_ERROR(c->Exec("INSERT INTO toani_schema_migrations(version) VALUES($1)",
                                      {PgParam::Int(m.version)})
                                  .status());
      }
      version_ = newest;
      return Status::Ok();
    });
  }

  Store* store() override { return &store_; }
  AuditStore* audit() override { return &audit_; }
  ReplayStore* replay() override { return &replay_; }
  PolicyKeyStore* policy_keys() override { return &policy_keys_; }
  ApprovalStore* approvals() override { return approvals_.get(); }
  LimitCounter* limits() override { return limits_.get(); }
  ExecutionStore* executions() override { return executions_.get(); }
  AuditHandoff* handoff() override {
    std::lock_guard<std::mutex> l(mu_);
    if (!handoff_) handoff_ = std::make_unique<PgHandoffImpl>(&pool_, url_, node_);
    return handoff_.get();
  }
  int schema_version() const override { return version_; }

  Status ClaimClusterValue(const std::string& key, const std::string& value) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_.Acquire());
    TOANI_RETURN_IF_ERROR(c->Exec("INSERT INTO cluster(key, value) VALUES($1, $2) "
                                  "ON CONFLICT (key) DO NOTHING",
                                  {PgParam::Text(key), PgParam::Text(value)})
                              .status());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, c->Exec("SELECT value FROM cluster WHERE key = $1", {PgParam::Text(key)}));
    if (r.rows() != 1) return Broken("cluster value vanished");
    if (r.Text(0, 0) != value) {
      return Status::FailedPrecondition("this node's " + key + " is '" + value +
                                        "' but the cluster's is '" + r.Text(0, 0) + "'");
    }
    return Status::Ok();
  }

 private:
  PgPool pool_;
  PgStoreImpl store_;
  PgAuditStoreImpl audit_;
  PgReplayStoreImpl replay_;
  PgPolicyKeyStoreImpl policy_keys_;
  std::unique_ptr<ApprovalStore> approvals_;
  std::unique_ptr<LimitCounter> limits_;
  std::unique_ptr<ExecutionStore> executions_;
  std::string url_, node_;
  std::mutex mu_;
  std::unique_ptr<PgHandoffImpl> handoff_;
  int version_ = 0;
};

}  // namespace

bool IsPostgresUrl(const std::string& url) {
  return url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
}

StatusOr<std::unique_ptr<PgDatabase>> PgDatabase::Open(const std::string& url,
                                                       const std::string& node, Clock clock) {
  auto db = std::make_unique<PgDatabaseImpl>(url, node, std::move(clock));
  TOANI_RETURN_IF_ERROR(db->Migrate());
  return std::unique_ptr<PgDatabase>(std::move(db));
}

}  // namespace toani::store
