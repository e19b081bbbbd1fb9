// PostgreSQL ExecutionStore (issue 7's interface): webhook executions pending until their
// signed callback, and the webhook message ids seen per execution, shared by every node —
// a callback may arrive at any node. Tables: docs/storage.md §1.
#include "store/pg.h"
#include "store/pg_internal.h"

namespace toani::store {
namespace {

class PgExecutionStore final : public ExecutionStore {
 public:
  explicit PgExecutionStore(PgPool* pool) : pool_(pool) {}

  Status PutPending(const PendingExecution& e) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    auto r = c->Exec(
        "INSERT INTO pending_executions(execution_id,tenant,agent,action,policy_id,"
        "policy_version,params_hash,jti,secret_credential_id,started_at,expires_at,status,"
        "result,receipt) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)",
        {PgParam::Text(e.execution_id), PgParam::Text(e.tenant), PgParam::Text(e.agent),
         PgParam::Text(e.action), PgParam::Text(e.policy_id), PgParam::Int(e.policy_version),
         PgParam::Text(e.params_hash), PgParam::Text(e.jti), PgParam::Text(e.secret_credential_id),
         PgParam::Text(e.started_at), PgParam::Int(e.expires_at), PgParam::Text(e.status),
         PgParam::Text(e.result), PgParam::Text(e.receipt)});
    if (r.status().code() == StatusCode::kAlreadyExists)
      return Status::AlreadyExists("execution exists");
    return r.status();
  }

  StatusOr<PendingExecution> GetExecution(const std::string& id) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult s,
        c->Exec("SELECT execution_id,tenant,agent,action,policy_id,policy_version,params_hash,jti,"
                "secret_credential_id,started_at,expires_at,status,result,receipt "
                "FROM pending_executions WHERE execution_id=$1",
                {PgParam::Text(id)}));
    if (s.rows() == 0) return Status::NotFound("execution " + id + " not found");
    PendingExecution e;
    e.execution_id = s.Text(0, 0);
    e.tenant = s.Text(0, 1);
    e.agent = s.Text(0, 2);
    e.action = s.Text(0, 3);
    e.policy_id = s.Text(0, 4);
    e.policy_version = s.Int(0, 5);
    e.params_hash = s.Text(0, 6);
    e.jti = s.Text(0, 7);
    e.secret_credential_id = s.Text(0, 8);
    e.started_at = s.Text(0, 9);
    e.expires_at = s.Int(0, 10);
    e.status = s.Text(0, 11);
    e.result = s.Text(0, 12);
    e.receipt = s.Text(0, 13);
    return e;
  }

  Status FinishExecution(const std::string& id, const std::string& status,
                         const std::string& result, const std::string& receipt) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    TOANI_ASSIGN_OR_RETURN(
        PgResult u, c->Exec("UPDATE pending_executions SET status=$1, result=$2, receipt=$3 "
                            "WHERE execution_id=$4 AND status='pending' RETURNING 1",
                            {PgParam::Text(status), PgParam::Text(result), PgParam::Text(receipt),
                             PgParam::Text(id)}));
    if (u.rows() == 0) return Status::FailedPrecondition("execution " + id + " is not pending");
    return Status::Ok();
  }

  Status RememberWebhookId(const std::string& id, const std::string& webhook_id,
                           SysTime expires_at) override {
    TOANI_ASSIGN_OR_RETURN(auto c, pool_->Acquire());
    if (++writes_ % 256 == 0) {
      (void)c->Exec("DELETE FROM webhook_ids WHERE expires_at < $1",
                    {PgParam::Int(UnixSeconds(std::chrono::system_clock::now()) - 86400)});
    }
    TOANI_ASSIGN_OR_RETURN(PgResult r,
                           c->Exec("INSERT INTO webhook_ids(execution_id,webhook_id,expires_at) "
                                   "VALUES($1,$2,$3) ON CONFLICT DO NOTHING RETURNING 1",
                                   {PgParam::Text(id), PgParam::Text(webhook_id),
                                    PgParam::Int(UnixSeconds(expires_at))}));
    if (r.rows() == 0) return Status::AlreadyExists("webhook id already seen");
    return Status::Ok();
  }

 private:
  PgPool* pool_;
  std::atomic<uint64_t> writes_{0};
};

}  // namespace

std::unique_ptr<ExecutionStore> NewPgExecutionStore(PgPool* pool) {
  return std::make_unique<PgExecutionStore>(pool);
}

}  // namespace toani::store
