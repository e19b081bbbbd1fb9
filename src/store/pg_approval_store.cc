// PostgreSQL implementations of ApprovalStore and LimitCounter (issue 5 interfaces;
// tables in docs/storage.md §1, migration 3). Every check-and-set is one
// transaction holding the row lock (SELECT … FOR UPDATE), so it is atomic across nodes.
#include <nlohmann/json.hpp>

#include "store/approval_rules.h"
#include "store/pg.h"
#include "store/pg_internal.h"

namespace toani::store {
namespace {

using nlohmann::json;

class PgApprovalStore final : public ApprovalStore {
 public:
  explicit PgApprovalStore(PgPool* pool) : pool_(pool) {}

  Status CreateApproval(const ApprovalRecord& r) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    auto res = c->Exec(
        std::string("INSERT INTO approvals(") + kApprovalCols +
            ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)",
        {PgParam::Text(r.tenant),        PgParam::Text(r.id),
         PgParam::Text(r.agent),         PgParam::Text(r.requester),
         PgParam::Text(r.user),          PgParam::Text(r.action),
         PgParam::Text(r.params_hash),   PgParam::Text(r.params),
         PgParam::Text(r.policy_id),     PgParam::Int(r.policy_version),
         PgParam::Text(r.risk_tier),     PgParam::Int(r.approvers_required),
         PgParam::Text(r.status),        PgParam::Text(r.created_at),
         PgParam::Int(r.expires_at),     PgParam::Int(r.poll_interval),
         PgParam::Int(r.last_polled_at), PgParam::Text(r.proof),
         PgParam::Text(r.decided_at),    PgParam::Text(DecisionsJson(r.decisions).dump())});
    if (res.status().code() == StatusCode::kAlreadyExists)
      return Status::AlreadyExists("approval " + r.id + " exists");
    return res.status();
  }

  StatusOr<ApprovalRecord> GetApproval(const std::string& tenant, const std::string& id) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    return Get(*c, tenant, id, false);
  }

  StatusOr<std::vector<ApprovalRecord>> ListApprovals(const std::string& tenant,
                                                      const std::string& status,
                                                      size_t limit) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(PgResult r,
                           c->Exec(std::string("SELECT ") + kApprovalCols +
                                       " FROM approvals WHERE tenant=$1 AND ($2='' OR status=$2) "
                                       "ORDER BY created_at DESC, id DESC LIMIT $3",
                                   {PgParam::Text(tenant), PgParam::Text(status),
                                    PgParam::Int(static_cast<int64_t>(limit))}));
    std::vector<ApprovalRecord> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(Row(r, i));
    return out;
  }

  StatusOr<ApprovalRecord> Decide(
      const std::string& tenant, const std::string& id, const ApprovalDecisionRecord& d,
      int64_t now,
      const std::function<StatusOr<std::string>(const ApprovalRecord&)>& finalize) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    StatusOr<ApprovalRecord> out = Status::Internal("unset");
    Status expired = Status::Ok();
    Status st = PgTransaction(*c, [&]() -> Status {
      TOANI_ASSIGN_OR_RETURN(ApprovalRecord r, Get(*c, tenant, id, /*for_update=*/true));
      if (r.status == "pending" && now >= r.expires_at) {
        TOANI_RETURN_IF_ERROR(SetStatus(*c, tenant, id, "expired"));
        expired = Status::FailedPrecondition("approval " + id + " has expired");
        return Status::Ok();  // commit the expiry
      }
      if (r.status != "pending")
        return Status::FailedPrecondition("approval " + id + " is " + r.status + ", not pending");
      TOANI_RETURN_IF_ERROR(ApplyApprovalDecision(&r, d, id));
      int64_t decided_unix = 0;
      if (r.status != "pending") {
        decided_unix = now;
        TOANI_ASSIGN_OR_RETURN(r.proof, finalize(r));
      }
      TOANI_RETURN_IF_ERROR(
          c->Exec("UPDATE approvals SET status=$1, decisions=$2, proof=$3, decided_at=$4, "
                  "decided_at_unix=$5 WHERE tenant=$6 AND id=$7 AND status='pending'",
                  {PgParam::Text(r.status), PgParam::Text(DecisionsJson(r.decisions).dump()),
                   PgParam::Text(r.proof), PgParam::Text(r.decided_at), PgParam::Int(decided_unix),
                   PgParam::Text(tenant), PgParam::Text(id)})
              .status());
      out = std::move(r);
      return Status::Ok();
    });
    TOANI_RETURN_IF_ERROR(st);
    TOANI_RETURN_IF_ERROR(expired);
    return out;
  }

  StatusOr<ApprovalPoll> Poll(const std::string& tenant, const std::string& id,
                              int64_t now) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    ApprovalPoll out;
    Status st = PgTransaction(*c, [&]() -> Status {
      TOANI_ASSIGN_OR_RETURN(ApprovalRecord r, Get(*c, tenant, id, /*for_update=*/true));
      if (r.status == "pending" && now >= r.expires_at) {
        TOANI_RETURN_IF_ERROR(SetStatus(*c, tenant, id, "expired"));
        r.status = "expired";
      }
      if (r.last_polled_at != 0 && now < r.last_polled_at + r.poll_interval) {
        out.slow_down = true;
        r.poll_interval = std::min<int64_t>(r.poll_interval + 5, 60);
      }
      r.last_polled_at = now;
      TOANI_RETURN_IF_ERROR(c->Exec("UPDATE approvals SET last_polled_at=$1, poll_interval=$2 "
                                    "WHERE tenant=$3 AND id=$4",
                                    {PgParam::Int(now), PgParam::Int(r.poll_interval),
                                     PgParam::Text(tenant), PgParam::Text(id)})
                                .status());
      out.record = std::move(r);
      return Status::Ok();
    });
    TOANI_RETURN_IF_ERROR(st);
    return out;
  }

  Status Redeem(const std::string& tenant, const std::string& id) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult u, c->Exec("UPDATE approvals SET status='redeemed' WHERE tenant=$1 AND id=$2 "
                            "AND status='approved' RETURNING 1",
                            {PgParam::Text(tenant), PgParam::Text(id)}));
    if (u.rows() != 1) {
      return Status::FailedPrecondition("approval " + id +
                                        " is not approved (or its token was already issued)");
    }
    return Status::Ok();
  }

  StatusOr<ApprovalRecord> RecentDenial(const std::string& tenant, const std::string& agent,
                                        const std::string& action, const std::string& params_hash,
                                        int64_t since) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, c->Exec(std::string("SELECT ") + kApprovalCols +
                                " FROM approvals WHERE tenant=$1 AND agent=$2 AND action=$3 AND "
                                "params_hash=$4 AND status='denied' AND decided_at_unix>=$5 "
                                "ORDER BY decided_at_unix DESC LIMIT 1",
                            {PgParam::Text(tenant), PgParam::Text(agent), PgParam::Text(action),
                             PgParam::Text(params_hash), PgParam::Int(since)}));
    if (r.rows() == 0) return Status::NotFound("no recent denial");
    return Row(r, 0);
  }

 private:
  static StatusOr<ApprovalRecord> Get(PgConn& c, const std::string& tenant, const std::string& id,
                                      bool for_update) {
    TOANI_ASSIGN_OR_RETURN(PgResult r, c.Exec(std::string("SELECT ") + kApprovalCols +
                                                  " FROM approvals WHERE tenant=$1 AND id=$2" +
                                                  (for_update ? " FOR UPDATE" : ""),
                                              {PgParam::Text(tenant), PgParam::Text(id)}));
    if (r.rows() == 0) return Status::NotFound("approval " + id + " not found");
    return Row(r, 0);
  }
  static Status SetStatus(PgConn& c, const std::string& tenant, const std::string& id,
                          const char* status) {
    return c
        .Exec("UPDATE approvals SET status=$1 WHERE tenant=$2 AND id=$3",
              {PgParam::Text(status), PgParam::Text(tenant), PgParam::Text(id)})
        .status();
  }
  static ApprovalRecord Row(const PgResult& s, int i) {
    ApprovalRecord r;
    r.tenant = s.Text(i, 0);
    r.id = s.Text(i, 1);
    r.agent = s.Text(i, 2);
    r.requester = s.Text(i, 3);
    r.user = s.Text(i, 4);
    r.action = s.Text(i, 5);
    r.params_hash = s.Text(i, 6);
    r.params = s.Text(i, 7);
    r.policy_id = s.Text(i, 8);
    r.policy_version = s.Int(i, 9);
    r.risk_tier = s.Text(i, 10);
    r.approvers_required = s.Int(i, 11);
    r.status = s.Text(i, 12);
    r.created_at = s.Text(i, 13);
    r.expires_at = s.Int(i, 14);
    r.poll_interval = s.Int(i, 15);
    r.last_polled_at = s.Int(i, 16);
    r.proof = s.Text(i, 17);
    r.decided_at = s.Text(i, 18);
    r.decisions = ParseDecisions(s.Text(i, 19));
    return r;
  }
  PgPool* pool_;
};

class PgLimitCounter final : public LimitCounter {
 public:
  explicit PgLimitCounter(PgPool* pool) : pool_(pool) {}

  StatusOr<LimitResult> TryAdd(const std::string& key, int64_t window_start, int64_t window_seconds,
                               double amount, double limit) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    LimitResult out;
    Status st = PgTransaction(*c, [&]() -> Status {
      if (++writes_ % 1024 == 0) {
        TOANI_RETURN_IF_ERROR(c->Exec("DELETE FROM limit_counters WHERE expires_at < $1",
                                      {PgParam::Int(window_start - 86400)})
                                  .status());
      }
      TOANI_RETURN_IF_ERROR(c->Exec("INSERT INTO limit_counters(key,window_start,expires_at,total) "
                                    "VALUES($1,$2,$3,0) ON CONFLICT DO NOTHING",
                                    {PgParam::Text(key), PgParam::Int(window_start),
                                     PgParam::Int(window_start + window_seconds)})
                                .status());
      TOANI_ASSIGN_OR_RETURN(
          PgResult r, c->Exec("SELECT total FROM limit_counters WHERE key=$1 AND window_start=$2 "
                              "FOR UPDATE",
                              {PgParam::Text(key), PgParam::Int(window_start)}));
      const double cur = r.rows() == 1 ? std::stod(r.Text(0, 0)) : 0.0;
      out.total = cur;
      if (cur + amount > limit) return Status::Ok();
      TOANI_RETURN_IF_ERROR(
          c->Exec("UPDATE limit_counters SET total = total + $1 WHERE key=$2 AND window_start=$3",
                  {PgParam::Text(Num(amount)), PgParam::Text(key), PgParam::Int(window_start)})
              .status());
      out.admitted = true;
      out.total = cur + amount;
      return Status::Ok();
    });
    if (!st.ok()) return Status::Unavailable("limit counter: " + st.message());
    return out;
  }

  StatusOr<double> Current(const std::string& key, int64_t window_start) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult r, c->Exec("SELECT total FROM limit_counters WHERE key=$1 AND window_start=$2",
                            {PgParam::Text(key), PgParam::Int(window_start)}));
    return r.rows() == 1 ? std::stod(r.Text(0, 0)) : 0.0;
  }

 private:
  static std::string Num(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", v);
    return b;
  }
  PgPool* pool_;
  std::atomic<uint64_t> writes_{0};
};

}  // namespace

std::unique_ptr<ApprovalStore> NewPgApprovalStore(PgPool* pool) {
  return std::make_unique<PgApprovalStore>(pool);
}
std::unique_ptr<LimitCounter> NewPgLimitCounter(PgPool* pool) {
  return std::make_unique<PgLimitCounter>(pool);
}

}  // namespace toani::store
