// The policy plane against real parts: SQLite stores, the audit log signed by keyd's
// own code (in-process), and the real executor's parameter check. Covers signed
// policy refusals, dual approval under concurrency, self-approval, expiry, CIBA
// polling and the HITL proof in the token and the audit log.
#include "server/policy_plane.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <thread>

#include "audit/test_util.h"
#include "common/jcs.h"
#include "crypto/hash.h"
#include "policy/signing.h"
#include "server/api.h"
#include "server/executor.h"
#include "store/audit_store.h"

namespace toani::server {
namespace {

using nlohmann::json;

Caller User(const std::string& name,
            std::set<Role> roles = {Role::kOperator, Role::kPolicyAdmin, Role::kApprover,
                                    Role::kAuditor, Role::kCredentialAdmin}) {
  return {"dev", "user", name, "spiffe://dev/user/" + name, std::move(roles)};
}
Caller Agent(const std::string& name) {
  return {"dev", "agent", name, "spiffe://dev/agent/" + name, {Role::kAgent}};
}

class NoSandbox : public SandboxRunner {
 public:
  StatusOr<std::unique_ptr<SandboxProcess>> Start(const SandboxSpec&) override {
    return Status::Unavailable("test: no sandbox");
  }
};

// Counts what the policy plane announces (the real webhook: approval_webhook_test).
class CountingAnnouncer : public ApprovalAnnouncer {
 public:
  void Queue(const store::ApprovalRecord& r) override {
    std::lock_guard<std::mutex> l(mu);
    ids.push_back(r.id);
  }
  void Kick() override {}
  size_t count() {
    std::lock_guard<std::mutex> l(mu);
    return ids.size();
  }
  std::mutex mu;
  std::vector<std::string> ids;
};

class PolicyPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    const std::string db = dir_.path() + "/toani.db";
    keyd_ = std::make_unique<audit::testing::InProcessKeyd>(dir_.path() + "/keyd");
    store_ = std::move(store::OpenSqliteStore(db)).value();
    keys_ = std::move(store::OpenSqlitePolicyKeyStore(db)).value();
    approvals_ = std::move(store::OpenSqliteApprovalStore(db)).value();
    limits_ = std::move(store::OpenSqliteLimitCounter(db)).value();
    audit_store_ = std::move(store::OpenSqliteAuditStore(db)).value();
    signer_ = std::move(audit::NewKeydAuditSigner(keyd_.get())).value();
    log_ = std::move(audit::AuditLog::Open(audit_store_.get(), signer_.get(), {})).value();
    ASSERT_TRUE(
        store_->AddCredential({"dev", "cred_std", "k", "api_key", 1, "blob", "fp", "now"}).ok());
    ASSERT_TRUE(store_
                    ->AddCredential({"dev", "cred_priv", "root", "api_key", 1, "blob", "fp", "now",
                                     "privileged"})
                    .ok());
    PolicyPlaneDeps d;
    d.store = store_.get();
    d.keys = keys_.get();
    d.approvals = approvals_.get();
    d.limits = limits_.get();
    d.audit = log_.get();
    d.keyd = keyd_.get();
    d.keyd_status = {{"measurement", std::string(64, 'a')}, {"simulated", true}};
    d.announcer = &announcer_;
    d.clock = [this] { return SystemClock()() + std::chrono::seconds(offset_.load()); };
    plane_ = std::make_unique<PolicyPlane>(d);
  }

  HttpResponse Call(const Caller& c, const std::string& method, const std::string& path,
                    const json& body = json::object(), std::map<std::string, std::string> q = {}) {
    HttpRequest req;
    req.method = method;
    req.path = path;
    req.query = std::move(q);
    auto r = plane_->Handle(c, req, body);
    EXPECT_TRUE(r.has_value()) << path;
    return r.value_or(HttpResponse{});
  }
  static json Body(const HttpResponse& r) { return json::parse(r.body, nullptr, false); }

  json RegisterKey(const policy::PolicyKeyPair& k) {
    auto r = Call(admin_, "POST", "/v1/policy-keys", {{"public_key", k.public_key}, {"name", "a"}});
    EXPECT_EQ(r.status, 201) << r.body;
    return Body(r);
  }

  static json Doc(int64_t version, int approvers = 2) {
    return {{"policy_id", "bank"},
            {"version", version},
            {"actions",
             {{"bank.pay",
               {{"agents", {"payer"}},
                {"connector", "http"},
                {"credential", "cred_std"},
                {"request",
                 {{"method", "POST"},
                  {"url", "https://bank.example/pay"},
                  {"body", {{"amount", "{{amount}}"}}}}},
                {"params",
                 {{"type", "object"},
                  {"additionalProperties", false},
                  {"required", {"amount"}},
                  {"properties", {{"amount", {{"type", "number"}, {"minimum", 0}}}}}}},
                {"egress", {{{"host", "bank.example"}}}},
                {"approval", {{"approvers", approvers}, {"ttl_seconds", 600}}}}},
              {"bank.look",
               {{"agents", {"payer"}},
                {"connector", "http"},
                {"credential", "cred_std"},
                {"request", {{"url", "https://bank.example/look"}}},
                {"egress", {{{"host", "bank.example"}}}}}}}}};
  }

  void ApplyV(int64_t version, int approvers = 2) {
    auto env = policy::SignPolicy(Doc(version, approvers), key_.secret);
    ASSERT_TRUE(env.ok());
    auto r = Call(admin_, "POST", "/v1/policies", *env);
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // An approval request from agent "payer" (user alice) for amount `amount`.
  std::string Request(double amount) {
    auto r = Call(Agent("payer"), "POST", "/v1/authorize",
                  {{"action", "bank.pay"}, {"params", {{"amount", amount}}}, {"user", "alice"}});
    EXPECT_EQ(r.status, 202) << r.body;
    return Body(r).value("approval_id", "");
  }

  std::vector<json> AuditOfType(const std::string& type) {
    std::vector<json> out;
    auto rows = audit_store_->ReadEntries(0, log_->size());
    for (const auto& row : *rows) {
      json e = json::parse(row.entry);
      if (e.value("type", "") == type) out.push_back(e);
    }
    return out;
  }

  audit::testing::TempDir dir_;
  std::unique_ptr<audit::testing::InProcessKeyd> keyd_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::PolicyKeyStore> keys_;
  std::unique_ptr<store::ApprovalStore> approvals_;
  std::unique_ptr<store::LimitCounter> limits_;
  std::unique_ptr<store::AuditStore> audit_store_;
  std::unique_ptr<audit::AuditSigner> signer_;
  std::unique_ptr<audit::AuditLog> log_;
  std::unique_ptr<PolicyPlane> plane_;
  std::atomic<int64_t> offset_{0};
  CountingAnnouncer announcer_;
  Caller admin_ = User("admin");
  policy::PolicyKeyPair key_ = policy::GeneratePolicyKey();
};

TEST_F(PolicyPlaneTest, RefusesUnsignedForgedUnregisteredRevokedAndDowngradedPolicies) {
  RegisterKey(key_);
  auto status = [&](const json& body) { return Call(admin_, "POST", "/v1/policies", body).status; };
  // Unsigned: a bare document.
  auto bare = Call(admin_, "POST", "/v1/policies", Doc(1));
  EXPECT_EQ(bare.status, 400);
  EXPECT_NE(bare.body.find("not signed"), std::string::npos) << bare.body;
  // Forged: a valid signature over other bytes, or garbage.
  json env = *policy::SignPolicy(Doc(1), key_.secret);
  json tampered = env;
  tampered["policy"]["actions"]["bank.pay"]["agents"] = {"*"};
  EXPECT_EQ(status(tampered), 403);
  json garbage = env;
  garbage["signatures"][0]["sig"] = std::string(86, 'A');
  EXPECT_EQ(status(garbage), 403);
  // Signed by a key nobody registered.
  policy::PolicyKeyPair stranger = policy::GeneratePolicyKey();
  auto unreg = Call(admin_, "POST", "/v1/policies", *policy::SignPolicy(Doc(1), stranger.secret));
  EXPECT_EQ(unreg.status, 403);
  EXPECT_NE(unreg.body.find("not registered"), std::string::npos) << unreg.body;
  // A registered signature plus an unregistered one: refused as a whole.
  EXPECT_EQ(status(*policy::SignPolicy(env, stranger.secret)), 403);
  // For another tenant.
  json other = Doc(1);
  other["tenant"] = "acme";
  EXPECT_EQ(status(*policy::SignPolicy(other, key_.secret)), 403);
  // None of those changed anything.
  EXPECT_EQ(Call(admin_, "GET", "/v1/policies/bank/history").status, 404);
  // The good one, then downgrades and replays are refused, every version kept.
  EXPECT_EQ(status(env), 201);
  EXPECT_EQ(status(env), 409);  // the same version again
  ApplyV(3);
  EXPECT_EQ(status(*policy::SignPolicy(Doc(2), key_.secret)), 409);  // older than 3
  auto hist = Body(Call(admin_, "GET", "/v1/policies/bank/history"));
  ASSERT_EQ(hist["versions"].size(), 2u) << hist.dump();
  EXPECT_EQ(hist["versions"][0]["version"], 1);
  EXPECT_EQ(hist["versions"][1]["version"], 3);
  EXPECT_EQ(hist["versions"][0]["signers"][0], key_.key_id);
  auto v1 = Body(Call(admin_, "GET", "/v1/policies/bank", json::object(), {{"version", "1"}}));
  EXPECT_EQ(v1["signed"]["policy"], Doc(1));
  EXPECT_EQ(v1["policy_hash"], "sha256:" + crypto::Sha256Hex(CanonicalizeJson(Doc(1))));
  // What was stored still verifies offline with the registered key.
  auto sp = policy::ParseSignedPolicy(v1["signed"]);
  ASSERT_TRUE(sp.ok());
  EXPECT_TRUE(policy::VerifyPolicySignature(sp->canonical, sp->signatures[0],
                                            *policy::ParsePublicKey(key_.public_key))
                  .ok());
  // A revoked key signs nothing more.
  EXPECT_EQ(Call(admin_, "POST", "/v1/policy-keys/" + key_.key_id + "/revoke").status, 200);
  auto revoked = Call(admin_, "POST", "/v1/policies", *policy::SignPolicy(Doc(4), key_.secret));
  EXPECT_EQ(revoked.status, 403);
  EXPECT_NE(revoked.body.find("revoked"), std::string::npos);
  // Only an operator registers keys; a policy admin alone cannot.
  Caller pa = User("pa", {Role::kPolicyAdmin});
  EXPECT_EQ(Call(pa, "POST", "/v1/policy-keys", {{"public_key", stranger.public_key}}).status, 403);
  // Every applied version is in the audit log with its hash and signer.
  auto applied = AuditOfType("policy.applied");
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0]["signers"][0], key_.key_id);
}

TEST_F(PolicyPlaneTest, DualApprovalWithConcurrentApproversBindsTheTokenToTheApprovedParams) {
  RegisterKey(key_);
  ApplyV(1, /*approvers=*/2);
  const std::string id = Request(250);
  ASSERT_FALSE(id.empty());
  // Eight distinct approvers race; exactly two approvals are recorded.
  std::atomic<int> ok{0}, conflict{0}, other{0};
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      while (!go) std::this_thread::yield();
      auto r =
          Call(User("approver" + std::to_string(i)), "POST", "/v1/approvals/" + id + "/approve");
      (r.status == 200 ? ok : r.status == 409 ? conflict : other)++;
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
  EXPECT_EQ(conflict.load(), 6);
  EXPECT_EQ(other.load(), 0);
  json rec = Body(Call(admin_, "GET", "/v1/approvals/" + id));
  EXPECT_EQ(rec["status"], "approved");
  ASSERT_EQ(rec["decisions"].size(), 2u);
  EXPECT_NE(rec["decisions"][0]["approver"], rec["decisions"][1]["approver"]);
  EXPECT_EQ(AuditOfType("approval.approved").size(), 2u);
  // The agent's token carries the proof, which is the hash of the record in the log.
  auto tok = Call(Agent("payer"), "POST", "/v1/approvals/" + id + "/token");
  ASSERT_EQ(tok.status, 200) << tok.body;
  const std::string token = Body(tok)["token"];
  auto verified = keyd_->Call({{"op", "token.verify"}, {"tenant", "dev"}, {"token", token}});
  ASSERT_TRUE(verified.ok());
  const json claims = (*verified)["claims"];
  EXPECT_EQ(claims["hitl"]["confirmed"], true);
  EXPECT_EQ(claims["hitl"]["approvers"].size(), 2u);
  EXPECT_EQ(claims["hitl"]["proof"], rec["proof"]);
  EXPECT_EQ(claims["params_hash"], policy::ParamsHash({{"amount", 250}}));
  EXPECT_EQ(claims["sub"], "dev:payer:alice");
  auto authorized = AuditOfType("action.authorized");
  ASSERT_EQ(authorized.size(), 1u);
  EXPECT_EQ(authorized[0]["hitl_proof"], rec["proof"]);
  EXPECT_EQ("sha256:" + crypto::Sha256Hex(CanonicalizeJson(authorized[0]["approval_record"])),
            rec["proof"]);
  EXPECT_EQ(authorized[0]["approval_record"]["approvers"].size(), 2u);
  // One token per approval.
  auto again = Call(Agent("payer"), "POST", "/v1/approvals/" + id + "/token");
  EXPECT_EQ(Body(again)["error"], "invalid_grant") << again.body;
  // The token refuses parameters other than the approved ones (the real executor).
  auto replay =
      std::move(store::OpenSqliteReplayStore(dir_.path() + "/toani.db", SystemClock())).value();
  NoSandbox runner;
  ExecutorConfig cfg;
  cfg.connector_path = "/nonexistent";
  cfg.work_dir = dir_.path();
  Executor exec(cfg, store_.get(), replay.get(), log_.get(), keyd_.get(), &runner,
                std::string(64, 'a'), SystemClock());
  auto refused = exec.Execute(Agent("payer"), token, {{"amount", 2500}});
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("parameters differ"), std::string::npos);
}

TEST_F(PolicyPlaneTest, SameApproverTwiceSelfApprovalAndExpiry) {
  RegisterKey(key_);
  ApplyV(1, 2);
  const std::string id = Request(10);
  EXPECT_EQ(Call(User("bob"), "POST", "/v1/approvals/" + id + "/approve").status, 200);
  auto twice = Call(User("bob"), "POST", "/v1/approvals/" + id + "/approve");
  EXPECT_EQ(twice.status, 409);
  EXPECT_NE(twice.body.find("distinct"), std::string::npos) << twice.body;
  // The human the agent acts for cannot approve it, nor can the requesting identity.
  auto self = Call(User("alice"), "POST", "/v1/approvals/" + id + "/approve");
  EXPECT_EQ(self.status, 403) << self.body;
  Caller agent_approver = Agent("payer");
  agent_approver.roles.insert(Role::kApprover);
  EXPECT_EQ(Call(agent_approver, "POST", "/v1/approvals/" + id + "/approve").status, 403);
  // An agent without the approver role cannot approve at all.
  EXPECT_EQ(Call(Agent("other"), "POST", "/v1/approvals/" + id + "/approve").status, 403);
  EXPECT_EQ(Body(Call(admin_, "GET", "/v1/approvals/" + id))["status"], "pending");
  // Past its expiry nobody can complete it, and the agent hears expired_token.
  offset_ = 601;
  auto late = Call(User("carol"), "POST", "/v1/approvals/" + id + "/approve");
  EXPECT_EQ(late.status, 409);
  EXPECT_NE(late.body.find("expired"), std::string::npos) << late.body;
  auto poll = Call(Agent("payer"), "POST", "/v1/approvals/" + id + "/token");
  EXPECT_EQ(Body(poll)["error"], "expired_token") << poll.body;
  EXPECT_EQ(AuditOfType("approval.refused").size(), 2u);
}

TEST_F(PolicyPlaneTest, CibaPollingAnswersAndRecentDenial) {
  RegisterKey(key_);
  ApplyV(1, 1);
  const std::string id = Request(99);
  auto p1 = Call(Agent("payer"), "POST", "/v1/approvals/" + id + "/token");
  EXPECT_EQ(p1.status, 400);
  EXPECT_EQ(Body(p1)["error"], "authorization_pending");
  EXPECT_EQ(Body(p1)["interval"], 5);
  auto p2 = Call(Agent("payer"), "POST", "/v1/approvals/" + id + "/token");
  EXPECT_EQ(Body(p2)["error"], "slow_down");
  EXPECT_EQ(Body(p2)["interval"], 10);
  // Another agent cannot poll (or see) it.
  EXPECT_EQ(Call(Agent("thief"), "POST", "/v1/approvals/" + id + "/token").status, 404);
  // Listed for approvers with what they must see.
  json list = Body(Call(admin_, "GET", "/v1/approvals"));
  ASSERT_EQ(list["approvals"].size(), 1u);
  EXPECT_EQ(list["approvals"][0]["params"], json({{"amount", 99}}));
  EXPECT_EQ(list["approvals"][0]["policy"]["version"], 1);
  EXPECT_EQ(Call(User("bob"), "POST", "/v1/approvals/" + id + "/deny", {{"comment", "no"}}).status,
            200);
  offset_ = 20;
  auto p3 = Call(Agent("payer"), "POST", "/v1/approvals/" + id + "/token");
  EXPECT_EQ(Body(p3)["error"], "access_denied") << p3.body;
  // The identical request is now denied without asking; a different one is asked.
  auto again = Call(Agent("payer"), "POST", "/v1/authorize",
                    {{"action", "bank.pay"}, {"params", {{"amount", 99}}}, {"user", "alice"}});
  EXPECT_EQ(again.status, 403) << again.body;
  EXPECT_EQ(Body(again)["rule"], "recently_denied");
  EXPECT_EQ(Call(Agent("payer"), "POST", "/v1/authorize",
                 {{"action", "bank.pay"}, {"params", {{"amount", 98}}}, {"user", "alice"}})
                .status,
            202);
}

// "An identical request denied recently is denied again without asking": no new
// approval request, no announcement, a clear reason naming the earlier denial — and
// only within deny_cooldown_seconds (default 3600), only for the same agent, action
// and params_hash.
TEST_F(PolicyPlaneTest, RecentDenialIsDeniedAgainWithoutAskingWithinTheCooldown) {
  RegisterKey(key_);
  ApplyV(1, 1);
  const std::string id = Request(250);
  ASSERT_EQ(announcer_.count(), 1u);
  EXPECT_EQ(announcer_.ids[0], id);
  ASSERT_EQ(Call(User("bob"), "POST", "/v1/approvals/" + id + "/deny").status, 200);
  auto all = [&] {
    return Body(Call(admin_, "GET", "/v1/approvals", {}, {{"status", "all"}}))["approvals"].size();
  };
  ASSERT_EQ(all(), 1u);
  for (int64_t at : {0, 1800, 3599}) {
    offset_ = at;
    auto again = Call(Agent("payer"), "POST", "/v1/authorize",
                      {{"action", "bank.pay"}, {"params", {{"amount", 250}}}, {"user", "alice"}});
    ASSERT_EQ(again.status, 403) << at << " " << again.body;
    EXPECT_EQ(Body(again)["decision"], "deny");
    EXPECT_EQ(Body(again)["rule"], "recently_denied");
    EXPECT_NE(Body(again)["detail"].get<std::string>().find(id), std::string::npos) << again.body;
    EXPECT_NE(Body(again)["detail"].get<std::string>().find("without asking"), std::string::npos);
  }
  // Nobody was asked again and nothing was announced; every refusal is audited.
  EXPECT_EQ(all(), 1u);
  EXPECT_EQ(announcer_.count(), 1u);
  size_t audited = 0;
  for (const auto& e : AuditOfType("action.denied"))
    audited += e.value("rule", "") == "recently_denied";
  EXPECT_EQ(audited, 3u);
  // Parameters differing by one unit are a different request: asked.
  offset_ = 3599;
  EXPECT_FALSE(Request(251).empty());
  EXPECT_EQ(announcer_.count(), 2u);
  // After the cooldown the identical request goes to approvers again.
  offset_ = 3601;
  EXPECT_FALSE(Request(250).empty());
  EXPECT_EQ(announcer_.count(), 3u);
}

TEST_F(PolicyPlaneTest, ApprovalBindsThePolicyVersion) {
  RegisterKey(key_);
  ApplyV(1, 1);
  const std::string id = Request(5);
  EXPECT_EQ(Call(User("bob"), "POST", "/v1/approvals/" + id + "/approve").status, 200);
  ApplyV(2, 1);  // the policy changed after the approval
  auto tok = Call(Agent("payer"), "POST", "/v1/approvals/" + id + "/token");
  EXPECT_EQ(Body(tok)["error"], "access_denied") << tok.body;
  EXPECT_NE(tok.body.find("changed since approval"), std::string::npos);
}

TEST_F(PolicyPlaneTest, AllowDenyAndSimulate) {
  RegisterKey(key_);
  ApplyV(1, 1);
  auto ok = Call(Agent("payer"), "POST", "/v1/authorize",
                 {{"action", "bank.look"}, {"params", json::object()}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Body(ok)["decision"], "allow");
  auto no = Call(Agent("payer"), "POST", "/v1/authorize",
                 {{"action", "bank.pay"}, {"params", {{"amount", -1}}}});
  EXPECT_EQ(no.status, 403);
  EXPECT_EQ(Body(no)["rule"], "params");
  EXPECT_EQ(Call(Agent("payer"), "POST", "/v1/authorize",
                 {{"action", "nope"}, {"params", json::object()}})
                .status,
            404);
  const uint64_t size = log_->size();
  auto sim = Body(Call(admin_, "POST", "/v1/policies/simulate",
                       {{"agent", "payer"}, {"action", "bank.pay"}, {"params", {{"amount", 5}}}}));
  EXPECT_EQ(sim["decision"], "approval_required");
  EXPECT_EQ(sim["rule"], "approval");
  EXPECT_TRUE(sim["explain"].is_array() && sim["explain"].size() >= 3) << sim.dump();
  // A candidate document is simulated without being stored.
  json cand = Doc(9, 0);
  auto sim2 = Body(Call(
      admin_, "POST", "/v1/policies/simulate",
      {{"agent", "payer"}, {"action", "bank.pay"}, {"params", {{"amount", 5}}}, {"policy", cand}}));
  EXPECT_EQ(sim2["decision"], "allow") << sim2.dump();
  EXPECT_EQ(sim2["policy"]["version"], 9);
  EXPECT_EQ(log_->size(), size);  // simulate wrote nothing
  EXPECT_EQ(Body(Call(admin_, "GET", "/v1/approvals"))["approvals"].size(), 0u);
  // Privileged credentials need two approvers even when the action asks for none.
  json priv = Doc(2, 0);
  priv["actions"]["bank.look"]["credential"] = "cred_priv";
  ASSERT_EQ(Call(admin_, "POST", "/v1/policies", *policy::SignPolicy(priv, key_.secret)).status,
            201);
  auto p = Call(Agent("payer"), "POST", "/v1/authorize",
                {{"action", "bank.look"}, {"params", json::object()}});
  EXPECT_EQ(p.status, 202);
  EXPECT_EQ(Body(p)["approvers_required"], 2);
}

// Sensitivity is looked up per credential and remembered once found (it cannot change):
// an action moved to another credential gets that credential's sensitivity at once.
TEST_F(PolicyPlaneTest, RememberedSensitivityFollowsTheCredentialNotTheAction) {
  RegisterKey(key_);
  ApplyV(1, 0);
  const json look = {{"action", "bank.look"}, {"params", json::object()}};
  for (int i = 0; i < 2; ++i) {  // looked up, then remembered: standard both times
    auto r = Call(Agent("payer"), "POST", "/v1/authorize", look);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Body(r)["decision"], "allow");
  }
  json priv = Doc(2, 0);
  priv["actions"]["bank.look"]["credential"] = "cred_priv";
  ASSERT_EQ(Call(admin_, "POST", "/v1/policies", *policy::SignPolicy(priv, key_.secret)).status,
            201);
  for (int i = 0; i < 2; ++i) {
    auto r = Call(Agent("payer"), "POST", "/v1/authorize", look);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(Body(r)["approvers_required"], 2);
  }
  ApplyV(3, 0);  // back to the standard credential
  EXPECT_EQ(Call(Agent("payer"), "POST", "/v1/authorize", look).status, 200);
}

}  // namespace
}  // namespace toani::server
