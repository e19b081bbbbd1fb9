// The approval webhook against real parts: the policy plane on SQLite, keyd's own code
// (in-process) holding the whsec_ secret as a sealed credential and signing, libcurl over
// TLS 1.3, and a real HTTPS receiver that verifies every delivery with the npm
// `standardwebhooks` reference library (tests/peers/approval_webhook_receiver.js).
// Asserts: valid signatures; the payload's fields; retry after the receiver answers 500;
// no parameter values (and no secret) in what is sent; delivery survives a restart while
// the approval is pending; decided approvals are not announced late; the agent's
// request neither waits for nor fails with the webhook; keyd signs nothing else.
#include "server/approval_webhook.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "../../tests/peers/node_peer.h"
#include "audit/test_util.h"
#include "common/encoding.h"
#include "common/standard_webhooks.h"
#include "policy/signing.h"
#include "server/policy_plane.h"
#include "store/audit_store.h"

namespace toani::server {
namespace {

using nlohmann::json;

constexpr const char* kAmount = "4242.17";
constexpr const char* kMemo = "SECRET-MEMO-7f3a9c";

Caller Admin() {
  return {"dev",
          "user",
          "root",
          "spiffe://dev/user/root",
          {Role::kOperator, Role::kPolicyAdmin, Role::kApprover, Role::kAuditor}};
}
Caller Approver(const std::string& n) {
  return {"dev", "user", n, "spiffe://dev/user/" + n, {Role::kApprover}};
}
Caller Agent() { return {"dev", "agent", "payer", "spiffe://dev/agent/payer", {Role::kAgent}}; }

class ApprovalWebhookTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/toani-apwh-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    peer_dir_ = tmpl;
    ::chmod(peer_dir_.c_str(), 0755);
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=toani-webhook-receiver -addext "
        "'subjectAltName=IP:127.0.0.1,DNS:admin.toani.test' -keyout " +
        peer_dir_ + "/key.pem -out " + peer_dir_ + "/cert.pem 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    SecretBytes key = GenerateWebhookSecret();
    secret_ = FormatWebhookSecret(key);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(peer_dir_); }

  void SetUp() override {
    const std::string db = dir_.path() + "/toani.db";
    keyd_ = std::make_unique<audit::testing::InProcessKeyd>(dir_.path() + "/keyd");
    store_ = std::move(store::OpenSqliteStore(db)).value();
    keys_ = std::move(store::OpenSqlitePolicyKeyStore(db)).value();
    approvals_ = std::move(store::OpenSqliteApprovalStore(db)).value();
    limits_ = std::move(store::OpenSqliteLimitCounter(db)).value();
    outbox_ = std::move(store::OpenSqliteWebhookOutbox(db)).value();
    audit_store_ = std::move(store::OpenSqliteAuditStore(db)).value();
    signer_ = std::move(audit::NewKeydAuditSigner(keyd_.get())).value();
    log_ = std::move(audit::AuditLog::Open(audit_store_.get(), signer_.get(), {})).value();
    ASSERT_TRUE(
        store_->AddCredential({"dev", "cred_api", "k", "api_key", 1, "blob", "fp", "now"}).ok());
    // The signing secret is a credential like any other: sealed to keyd's intake key,
    // stored as a keyd blob; the server side never holds it in plain text.
    auto status = keyd_->Call({{"op", "status"}});
    ASSERT_TRUE(status.ok());
    auto pk = Base64UrlDecodeStrict((*status)["intake_public_key"].get<std::string>());
    ASSERT_TRUE(pk.ok());
    Bytes sealed(secret_.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), reinterpret_cast<const uint8_t*>(secret_.data()), secret_.size(),
                    pk->data());
    auto blob = keyd_->Call({{"op", "credential.import"},
                             {"tenant", "dev"},
                             {"credential_id", "cred_whsec"},
                             {"version", 1},
                             {"sealed", Base64UrlEncode(sealed)}});
    ASSERT_TRUE(blob.ok()) << blob.status().ToString();
    ASSERT_TRUE(store_
                    ->AddCredential({"dev", "cred_whsec", "approval-webhook", "webhook_secret", 1,
                                     (*blob)["blob"], "fp2", "now"})
                    .ok());
  }

  void TearDown() override {
    plane_.reset();
    hook_.reset();
  }

  // The policy plane, announcing through a webhook to `url`.
  void StartPlane(const std::string& url) {
    plane_.reset();
    hook_.reset();
    ApprovalWebhookConfig cfg;
    cfg.url = url;
    cfg.secret_credential = "cred_whsec";
    cfg.ca_file = peer_dir_ + "/cert.pem";
    cfg.timeout = std::chrono::seconds(5);
    auto h = ApprovalWebhook::Start(
        cfg, {outbox_.get(), approvals_.get(), store_.get(), keyd_.get(), SystemClock()});
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    hook_ = std::move(*h);
    PolicyPlaneDeps d;
    d.store = store_.get();
    d.keys = keys_.get();
    d.approvals = approvals_.get();
    d.limits = limits_.get();
    d.audit = log_.get();
    d.keyd = keyd_.get();
    d.announcer = hook_.get();
    d.keyd_status = {{"measurement", std::string(64, 'a')}, {"simulated", true}};
    plane_ = std::make_unique<PolicyPlane>(d);
  }

  HttpResponse Call(const Caller& c, const std::string& method, const std::string& path,
                    const json& body = json::object()) {
    HttpRequest req;
    req.method = method;
    req.path = path;
    auto r = plane_->Handle(c, req, body);
    EXPECT_TRUE(r.has_value()) << path;
    return r.value_or(HttpResponse{});
  }
  static json Body(const HttpResponse& r) { return json::parse(r.body, nullptr, false); }

  void ApplyPolicy() {
    policy::PolicyKeyPair k = policy::GeneratePolicyKey();
    ASSERT_EQ(
        Call(Admin(), "POST", "/v1/policy-keys", {{"public_key", k.public_key}, {"name", "a"}})
            .status,
        201);
    json doc = {
        {"policy_id", "bank"},
        {"version", 1},
        {"actions",
         {{"bank.pay",
           {{"agents", {"payer"}},
            {"connector", "http"},
            {"credential", "cred_api"},
            {"request",
             {{"method", "POST"},
              {"url", "https://bank.example/pay"},
              {"body", {{"amount", "{{amount}}"}, {"memo", "{{memo}}"}}}}},
            {"params",
             {{"type", "object"},
              {"additionalProperties", false},
              {"required", {"amount", "memo"}},
              {"properties", {{"amount", {{"type", "number"}}}, {"memo", {{"type", "string"}}}}}}},
            {"egress", {{{"host", "bank.example"}}}},
            {"risk_tier", "high"},
            {"approval", {{"approvers", 1}, {"ttl_seconds", 600}}}}}}}};
    auto env = policy::SignPolicy(doc, k.secret);
    ASSERT_TRUE(env.ok());
    ASSERT_EQ(Call(Admin(), "POST", "/v1/policies", *env).status, 201);
  }

  json Authorize(const std::string& memo = kMemo) {
    auto r = Call(Agent(), "POST", "/v1/authorize",
                  {{"action", "bank.pay"},
                   {"params", {{"amount", std::stod(kAmount)}, {"memo", memo}}},
                   {"user", "alice"}});
    EXPECT_EQ(r.status, 202) << r.body;
    return Body(r);
  }

  // Waits (generously: the machine may be loaded) until `pred` holds.
  template <typename P>
  static bool WaitFor(P pred, int seconds = 60) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return pred();
  }

  std::unique_ptr<testing::NodePeer> Receiver(int fail_first) {
    auto p = std::make_unique<testing::NodePeer>(dir_.path(),
                                                 json{{"cert", peer_dir_ + "/cert.pem"},
                                                      {"key", peer_dir_ + "/key.pem"},
                                                      {"secret", secret_},
                                                      {"fail_first", fail_first}},
                                                 "approval_webhook_receiver.js");
    EXPECT_TRUE(p->ok())
        << "tests/peers/approval_webhook_receiver.js did not start (npm ci in tests/peers?)";
    return p;
  }
  static std::string HookUrl(const testing::NodePeer& p) {
    return "https://127.0.0.1:" + std::to_string(p.port()) + "/hooks/approvals";
  }
  json Deliveries(const testing::NodePeer& p) {
    return p.Admin(peer_dir_ + "/cert.pem", "GET", "/deliveries");
  }
  size_t OutboxSize() {
    auto l = outbox_->List();
    return l.ok() ? l->size() : 999;
  }

  static inline std::string peer_dir_;
  static inline std::string secret_;
  audit::testing::TempDir dir_;
  std::unique_ptr<audit::testing::InProcessKeyd> keyd_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::PolicyKeyStore> keys_;
  std::unique_ptr<store::ApprovalStore> approvals_;
  std::unique_ptr<store::LimitCounter> limits_;
  std::unique_ptr<store::WebhookOutbox> outbox_;
  std::unique_ptr<store::AuditStore> audit_store_;
  std::unique_ptr<audit::AuditSigner> signer_;
  std::unique_ptr<audit::AuditLog> log_;
  std::unique_ptr<ApprovalWebhook> hook_;
  std::unique_ptr<PolicyPlane> plane_;
};

TEST_F(ApprovalWebhookTest, SignedAnnouncementRetriedAfter500WithoutParameterValues) {
  auto rx = Receiver(/*fail_first=*/2);
  ASSERT_TRUE(rx->ok());
  StartPlane(HookUrl(*rx));
  ApplyPolicy();
  const json ans = Authorize();
  const std::string id = ans["approval_id"];
  // The agent got its answer at once; delivery happens behind it (500, 500, then 204).
  ASSERT_TRUE(WaitFor([&] { return Deliveries(*rx).size() >= 3; })) << Deliveries(*rx).dump();
  ASSERT_TRUE(WaitFor([&] { return OutboxSize() == 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const json got = Deliveries(*rx);
  ASSERT_EQ(got.size(), 3u) << "delivered once it succeeded, then never again: " << got.dump();
  EXPECT_EQ(got[0]["answered"], 500);
  EXPECT_EQ(got[1]["answered"], 500);
  EXPECT_EQ(got[2]["answered"], 204);
  for (const auto& d : got) {
    // Verified by the standardwebhooks reference library against the raw bytes.
    EXPECT_TRUE(d["verified"].get<bool>()) << d.dump();
    EXPECT_EQ(d["method"], "POST");
    EXPECT_EQ(d["path"], "/hooks/approvals");
    EXPECT_EQ(d["headers"]["content-type"], "application/json");
    // One message id for every attempt (receivers dedupe on it).
    EXPECT_EQ(d["headers"]["webhook-id"], "msg_" + id);
    EXPECT_EQ(d["body"], got[0]["body"]);
    EXPECT_EQ(d["headers"]["webhook-signature"].get<std::string>().rfind("v1,", 0), 0u);
    // Nothing the agent sent as a parameter value in the payload (the headers hold only
    // ids, a timestamp, a signature and the receiver's host:port, which may contain any
    // digits), and never the secret anywhere.
    const std::string body = d["body"].get<std::string>();
    EXPECT_EQ(body.find(kMemo), std::string::npos) << body;
    EXPECT_EQ(body.find(kAmount), std::string::npos) << body;
    EXPECT_EQ(body.find("4242"), std::string::npos) << body;
    const std::string raw = d.dump();
    EXPECT_EQ(raw.find(kMemo), std::string::npos) << raw;
    EXPECT_EQ(raw.find(secret_), std::string::npos);
    EXPECT_EQ(raw.find(secret_.substr(6)), std::string::npos);
  }
  // Backoff: the retries were spread out, not fired back to back (1 s, then 2 s).
  const int64_t t0 = std::stoll(got[0]["headers"]["webhook-timestamp"].get<std::string>());
  const int64_t t2 = std::stoll(got[2]["headers"]["webhook-timestamp"].get<std::string>());
  EXPECT_GE(t2 - t0, 2);
  // The payload: what approvers need to find and judge the request, nothing more.
  const json p = json::parse(got[2]["body"].get<std::string>());
  EXPECT_EQ(p["type"], "approval.requested");
  EXPECT_TRUE(p["timestamp"].is_string());
  const json& data = p["data"];
  EXPECT_EQ(data["approval_id"], id);
  EXPECT_EQ(data["tenant"], "dev");
  EXPECT_EQ(data["agent"], "payer");
  EXPECT_EQ(data["requester"], "spiffe://dev/agent/payer");
  EXPECT_EQ(data["user"], "alice");
  EXPECT_EQ(data["action"], "bank.pay");
  EXPECT_EQ(data["params_hash"], ans["params_hash"]);
  EXPECT_EQ(data["policy"], json({{"id", "bank"}, {"version", 1}}));
  EXPECT_EQ(data["risk_tier"], "high");
  EXPECT_EQ(data["approvers_required"], 1);
  EXPECT_EQ(data["expires_at"], ans["expires_at"]);
  EXPECT_EQ(data["review"]["cli"], "toani approval show " + id);
  EXPECT_EQ(data["review"]["api"], "/v1/approvals/" + id);
  EXPECT_FALSE(data.contains("params"));
  std::set<std::string> keys;
  for (const auto& [k, v] : data.items()) keys.insert(k);
  EXPECT_EQ(keys,
            (std::set<std::string>{"approval_id", "tenant", "agent", "requester", "user", "action",
                                   "params_hash", "policy", "risk_tier", "approvers_required",
                                   "created_at", "expires_at", "review"}));
  // Our own verifier agrees with the reference library on the delivered bytes.
  auto key = ParseWebhookSecret(secret_);
  ASSERT_TRUE(key.ok());
  const json& h = got[2]["headers"];
  EXPECT_TRUE(VerifyWebhook(*key,
                            {h["webhook-id"].get_ref<const std::string&>(),
                             h["webhook-timestamp"].get_ref<const std::string&>(),
                             h["webhook-signature"].get_ref<const std::string&>()},
                            got[2]["body"].get<std::string>(), UnixSeconds(SystemClock()()))
                  .ok());
  EXPECT_EQ(hook_->stats().delivered, 1u);
  EXPECT_EQ(hook_->stats().failed_attempts, 2u);
}

TEST_F(ApprovalWebhookTest, ReceiverDownDoesNotBlockOrFailTheAgentAndSurvivesRestart) {
  // Nothing listens on this port: every attempt fails (connection refused).
  std::string dead;
  {
    auto tmp = Receiver(0);
    ASSERT_TRUE(tmp->ok());
    dead = HookUrl(*tmp);
  }  // stopped: its port is now closed
  StartPlane(dead);
  ApplyPolicy();
  const json a1 = Authorize();  // 202 although the receiver is down
  const json a2 = Authorize("another memo");
  ASSERT_TRUE(WaitFor([&] { return hook_->stats().failed_attempts >= 2; }));
  ASSERT_EQ(OutboxSize(), 2u);
  // An approver settles one of them while the receiver is down; it must not be
  // announced later.
  ASSERT_EQ(Call(Approver("bob"), "POST",
                 "/v1/approvals/" + a2["approval_id"].get<std::string>() + "/deny")
                .status,
            200);
  // "Restart": the announcer goes away with rows still queued; a new one (the operator
  // fixed the URL) delivers what is still pending from the durable outbox.
  hook_.reset();
  plane_.reset();
  auto rx = Receiver(0);
  ASSERT_TRUE(rx->ok());
  StartPlane(HookUrl(*rx));
  ASSERT_TRUE(WaitFor([&] { return OutboxSize() == 0; })) << OutboxSize();
  ASSERT_TRUE(WaitFor([&] { return Deliveries(*rx).size() >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const json got = Deliveries(*rx);
  ASSERT_EQ(got.size(), 1u) << got.dump();
  EXPECT_TRUE(got[0]["verified"].get<bool>());
  EXPECT_EQ(got[0]["headers"]["webhook-id"], "msg_" + a1["approval_id"].get<std::string>());
  EXPECT_EQ(json::parse(got[0]["body"].get<std::string>())["data"]["approval_id"],
            a1["approval_id"]);
  EXPECT_EQ(hook_->stats().delivered, 1u);
  EXPECT_EQ(hook_->stats().dropped, 1u);  // the denied one
}

TEST_F(ApprovalWebhookTest, MissingSigningSecretIsRetriedNotSentUnsigned) {
  auto rx = Receiver(0);
  ASSERT_TRUE(rx->ok());
  StartPlane(HookUrl(*rx));
  ApplyPolicy();
  // Point the webhook at a credential that does not exist: nothing may go out unsigned.
  hook_.reset();
  plane_.reset();
  ApprovalWebhookConfig cfg;
  cfg.url = HookUrl(*rx);
  cfg.secret_credential = "cred_missing";
  cfg.ca_file = peer_dir_ + "/cert.pem";
  auto h = ApprovalWebhook::Start(
      cfg, {outbox_.get(), approvals_.get(), store_.get(), keyd_.get(), SystemClock()});
  ASSERT_TRUE(h.ok());
  hook_ = std::move(*h);
  PolicyPlaneDeps d;
  d.store = store_.get();
  d.keys = keys_.get();
  d.approvals = approvals_.get();
  d.limits = limits_.get();
  d.audit = log_.get();
  d.keyd = keyd_.get();
  d.announcer = hook_.get();
  d.keyd_status = {{"measurement", std::string(64, 'a')}, {"simulated", true}};
  plane_ = std::make_unique<PolicyPlane>(d);
  Authorize();
  ASSERT_TRUE(WaitFor([&] { return hook_->stats().failed_attempts >= 1; }));
  EXPECT_EQ(Deliveries(*rx).size(), 0u);
  auto rows = outbox_->List();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_NE((*rows)[0].last_error.find("cred_missing"), std::string::npos) << (*rows)[0].last_error;
}

// Queued before the approval is stored (so a crash in between loses nothing): not sent
// while the approval is not there, sent once it is; dropped if it never appears.
TEST_F(ApprovalWebhookTest, QueuedBeforeTheApprovalIsStoredIsSentOnlyOnceItIs) {
  auto rx = Receiver(0);
  ASSERT_TRUE(rx->ok());
  StartPlane(HookUrl(*rx));
  const int64_t now = UnixSeconds(SystemClock()());
  store::ApprovalRecord rec;
  rec.tenant = "dev";
  rec.id = "apr_queuedfirst0001";
  rec.agent = "payer";
  rec.requester = "spiffe://dev/agent/payer";
  rec.user = "-";
  rec.action = "bank.pay";
  rec.params_hash = "sha256:00";
  rec.params = "{}";
  rec.policy_id = "bank";
  rec.policy_version = 1;
  rec.risk_tier = "low";
  rec.created_at = FormatRfc3339(SystemClock()());
  rec.expires_at = now + 600;
  hook_->Queue(rec);
  hook_->Kick();
  ASSERT_TRUE(WaitFor([&] {
    auto l = outbox_->List();
    return l.ok() && l->size() == 1 && (*l)[0].attempts >= 1;
  }));
  EXPECT_NE((*outbox_->List())[0].last_error.find("not stored"), std::string::npos);
  EXPECT_EQ(Deliveries(*rx).size(), 0u);
  ASSERT_TRUE(approvals_->CreateApproval(rec).ok());
  ASSERT_TRUE(WaitFor([&] { return Deliveries(*rx).size() >= 1; }));
  json got = Deliveries(*rx);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0]["verified"].get<bool>());
  EXPECT_EQ(got[0]["headers"]["webhook-id"], "msg_apr_queuedfirst0001");
  EXPECT_EQ(json::parse(got[0]["body"].get<std::string>())["data"]["user"], nullptr);
  // One whose approval never appears is dropped when it would have expired, unsent.
  store::ApprovalRecord orphan = rec;
  orphan.id = "apr_neverstored0001";
  orphan.expires_at = UnixSeconds(SystemClock()()) + 2;
  hook_->Queue(orphan);
  hook_->Kick();
  ASSERT_TRUE(WaitFor([&] { return OutboxSize() == 0; }));
  EXPECT_EQ(hook_->stats().dropped, 1u);
  EXPECT_EQ(Deliveries(*rx).size(), 1u);
  EXPECT_EQ(hook_->stats().failed_attempts, 0u);  // "not stored yet" is not a failure
}

TEST_F(ApprovalWebhookTest, KeydSignsOnlyApprovalAnnouncements) {
  auto cred = store_->GetCredential("dev", "cred_whsec");
  ASSERT_TRUE(cred.ok());
  auto sign = [&](const std::string& id, const json& body) {
    return keyd_->Call({{"op", "webhook.sign_approval"},
                        {"tenant", "dev"},
                        {"credential_id", "cred_whsec"},
                        {"version", 1},
                        {"blob", cred->blob},
                        {"webhook_id", id},
                        {"body", body.dump()}});
  };
  json ok_body = {{"type", "approval.requested"}, {"data", {{"approval_id", "apr_1"}}}};
  auto ok = sign("msg_apr_1", ok_body);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok).value("webhook_id", ""), "msg_apr_1");
  EXPECT_EQ((*ok).dump().find(secret_.substr(6)), std::string::npos);
  // A forged connector callback (any other body or id) is refused.
  EXPECT_FALSE(sign("msg_apr_1", {{"status", "succeeded"}}).ok());
  EXPECT_FALSE(sign("cb_123", ok_body).ok());
  EXPECT_FALSE(sign("msg_apr_2", ok_body).ok());  // id and body name different approvals
  EXPECT_FALSE(
      sign("msg_apr_1", {{"type", "execution.finished"}, {"data", {{"approval_id", "apr_1"}}}})
          .ok());
  // A credential that is not a whsec_ secret is refused.
  auto status = keyd_->Call({{"op", "status"}});
  auto pk = Base64UrlDecodeStrict((*status)["intake_public_key"].get<std::string>());
  const std::string not_whsec = "plain-api-key-123";
  Bytes sealed(not_whsec.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), reinterpret_cast<const uint8_t*>(not_whsec.data()),
                  not_whsec.size(), pk->data());
  auto blob = keyd_->Call({{"op", "credential.import"},
                           {"tenant", "dev"},
                           {"credential_id", "cred_x"},
                           {"version", 1},
                           {"sealed", Base64UrlEncode(sealed)}});
  ASSERT_TRUE(blob.ok());
  auto bad = keyd_->Call({{"op", "webhook.sign_approval"},
                          {"tenant", "dev"},
                          {"credential_id", "cred_x"},
                          {"version", 1},
                          {"blob", (*blob)["blob"]},
                          {"webhook_id", "msg_apr_1"},
                          {"body", ok_body.dump()}});
  EXPECT_FALSE(bad.ok());
}

TEST(ApprovalWebhookConfigTest, RefusesUnusableConfiguration) {
  ApprovalWebhookConfig c;
  c.secret_credential = "cred_1";
  c.url = "http://hooks.example/approvals";
  EXPECT_FALSE(ValidateApprovalWebhookConfig(c).ok());
  c.url = "https://hooks.example/approvals";
  EXPECT_TRUE(ValidateApprovalWebhookConfig(c).ok());
  c.secret_credential = "";
  EXPECT_FALSE(ValidateApprovalWebhookConfig(c).ok());
}

}  // namespace
}  // namespace toani::server
