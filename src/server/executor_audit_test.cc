// Fail closed (issue 4): when the audit store fails, execution.started is not durable and
// the connector never starts (503); when it works, the same request reaches the sandbox.
#include <gtest/gtest.h>

#include <atomic>

#include "audit/log.h"
#include "audit/outbox.h"
#include "audit/test_util.h"
#include "policy/policy.h"
#include "server/executor.h"
#include "store/audit_store.h"

namespace toani::server {
namespace {

using nlohmann::json;

class CountingRunner : public SandboxRunner {
 public:
  std::atomic<int> starts{0};
  std::atomic<bool>* break_store_on_start = nullptr;  // the store fails once the run began
  StatusOr<std::unique_ptr<SandboxProcess>> Start(const SandboxSpec&) override {
    ++starts;
    if (break_store_on_start != nullptr) *break_store_on_start = true;
    return Status::Unavailable("test runner: no sandbox");
  }
};

class ExecutorAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keyd_ = std::make_unique<audit::testing::InProcessKeyd>(dir_.path() + "/keyd");
    store_ = std::move(store::OpenSqliteStore(dir_.path() + "/toani.db")).value();
    replay_ =
        std::move(store::OpenSqliteReplayStore(dir_.path() + "/toani.db", SystemClock())).value();
    auto as = std::move(store::OpenSqliteAuditStore(dir_.path() + "/toani.db")).value();
    flaky_ = std::make_unique<audit::testing::FlakyStore>(std::move(as));
    signer_ = std::move(audit::NewKeydAuditSigner(keyd_.get())).value();
    log_ = std::move(audit::AuditLog::Open(flaky_.get(), signer_.get(), {})).value();
    store::CredentialRecord cred{"dev", "cred-1",    "bank",          "api_key",
                                 1,     "c2.unused", "hmac-sha256:x", "now"};
    ASSERT_TRUE(store_->AddCredential(cred).ok());
    json doc = {
        {"policy_id", "bank"},
        {"version", 1},
        {"actions",
         {{"bank.get",
           {{"agents", {"a1"}},
            {"connector", "http"},
            {"credential", "cred-1"},
            {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
            {"request", {{"method", "GET"}, {"url", "https://bank.toani.test/v1/{{n}}"}}},
            {"params", {{"type", "object"}, {"properties", {{"n", {{"type", "string"}}}}}}},
            {"egress", {{{"host", "bank.toani.test"}, {"port", 443}}}},
            {"risk_tier", "low"},
            {"token_ttl_seconds", 300}}}}}};
    ASSERT_TRUE(policy::ParsePolicy(doc).ok()) << policy::ParsePolicy(doc).status().message();
    ASSERT_TRUE(store_->PutPolicy({"dev", "bank", 1, doc.dump(), "now"}).ok());
    ExecutorConfig cfg;
    cfg.connector_path = "/nonexistent";
    cfg.work_dir = dir_.path();
    executor_ =
        std::make_unique<Executor>(cfg, store_.get(), replay_.get(), log_.get(), keyd_.get(),
                                   &runner_, std::string(64, 'a'), SystemClock());
  }

  std::string Mint(const json& params, const std::string& user = "-") {
    json claims = {
        {"policy_id", "bank"},
        {"policy_version", 1},
        {"action", "bank.get"},
        {"params_hash", policy::ParamsHash(params)},
        {"risk_tier", "low"},
        {"hitl", {{"confirmed", false}, {"approvers", json::array()}, {"proof", nullptr}}},
        {"cred", {"cred-1"}}};
    auto r = keyd_->Call({{"op", "token.mint"},
                          {"tenant", "dev"},
                          {"agent", "a1"},
                          {"user", user},
                          {"ttl_seconds", 300},
                          {"claims", claims}});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? (*r)["token"].get<std::string>() : "";
  }

  audit::testing::TempDir dir_;
  std::unique_ptr<audit::testing::InProcessKeyd> keyd_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::ReplayStore> replay_;
  std::unique_ptr<audit::testing::FlakyStore> flaky_;
  std::unique_ptr<audit::AuditSigner> signer_;
  std::unique_ptr<audit::AuditLog> log_;
  CountingRunner runner_;
  std::unique_ptr<Executor> executor_;
  Caller agent_{"dev", "agent", "a1", "spiffe://dev/agent/a1", {Role::kAgent}};
};

TEST_F(ExecutorAuditTest, StoreFailureBeforeExecutionStartedStopsTheExecution) {
  json params = {{"n", "1"}};
  std::string token = Mint(params);
  flaky_->fail_appends = true;
  auto r = executor_->Execute(agent_, token, params);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(runner_.starts.load(), 0) << "the connector started although its start was not audited";
  EXPECT_EQ(log_->size(), 0u);
}

TEST_F(ExecutorAuditTest, WithAWorkingStoreTheSameRequestReachesTheSandbox) {
  json params = {{"n", "2"}};
  std::string token = Mint(params, "alice");
  auto r = executor_->Execute(agent_, token, params);
  EXPECT_EQ(runner_.starts.load(), 1);
  // execution.started, then execution.finished (the run failed in the fake runner).
  ASSERT_EQ(log_->size(), 2u);
  auto entries = log_->Entries(0, 2);
  EXPECT_NE((*entries)[0].find("execution.started"), std::string::npos);
  EXPECT_NE((*entries)[1].find("execution.finished"), std::string::npos);
  // The user behind the token is logged only as a daily-salted reference; the agent by name.
  for (const auto& e : *entries) {
    EXPECT_EQ(e.find("alice"), std::string::npos) << e;
    EXPECT_NE(e.find("\"user_ref\":\"hmac-sha256:"), std::string::npos) << e;
    EXPECT_NE(e.find("\"agent\":\"a1\""), std::string::npos) << e;
  }
}

TEST_F(ExecutorAuditTest, ExecutionFinishedIsNeverLostWhenTheStoreFailsMidRun) {
  auto outbox = audit::Outbox::Open(dir_.path() + "/outbox", log_.get(), std::chrono::hours(1));
  ASSERT_TRUE(outbox.ok());
  ExecutorConfig cfg;
  cfg.connector_path = "/nonexistent";
  cfg.work_dir = dir_.path();
  cfg.audit_outbox = outbox->get();
  Executor ex(cfg, store_.get(), replay_.get(), log_.get(), keyd_.get(), &runner_,
              std::string(64, 'a'), SystemClock());
  runner_.break_store_on_start = &flaky_->fail_appends;
  json params = {{"n", "3"}};
  auto r = ex.Execute(agent_, Mint(params), params);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["receipt"]["finish_audit_index"], "pending");
  EXPECT_EQ(log_->size(), 1u);  // only execution.started made it
  EXPECT_EQ((*outbox)->Pending(), 1u);
  flaky_->fail_appends = false;
  EXPECT_EQ((*outbox)->DrainOnce(), 0u);
  ASSERT_EQ(log_->size(), 2u);
  auto entries = log_->Entries(1, 2);
  EXPECT_NE((*entries)[0].find("execution.finished"), std::string::npos);
  EXPECT_NE((*entries)[0].find("outbox_id"), std::string::npos);
}

}  // namespace
}  // namespace toani::server
