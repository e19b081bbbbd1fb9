// The approval webhook through the real server, the way an operator sets it up: the
// whsec_ secret is added as a sealed credential, the config file names only its id,
// the server restarts with it, and an agent's request that needs approval is announced
// to a real HTTPS receiver verifying with the npm `standardwebhooks` library — with no
// parameter values, and the secret in no log line and no response.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../peers/node_peer.h"
#include "common/encoding.h"
#include "server_harness.h"
#include "signed_policy.h"

namespace toani::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

TEST(ApprovalWebhookServerTest, AnnouncesSignedWithoutParameterValues) {
  ASSERT_GE(sodium_init(), 0);
  char tmpl[] = "/tmp/toani-apwhs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ::chmod(dir.c_str(), 0755);
  struct Cleanup {
    std::string d;
    ~Cleanup() { fs::remove_all(d); }
  } cleanup{dir};
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=toani-webhook-receiver -addext 'subjectAltName=IP:127.0.0.1,DNS:admin.toani.test' "
      "-keyout " +
      dir + "/key.pem -out " + dir + "/cert.pem 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  uint8_t raw[32];
  randombytes_buf(raw, sizeof raw);
  const std::string whsec = "whsec_" + Base64Encode(std::span<const uint8_t>(raw, sizeof raw));
  NodePeer rx(dir,
              {{"cert", dir + "/cert.pem"},
               {"key", dir + "/key.pem"},
               {"secret", whsec},
               {"fail_first", 1}},
              "approval_webhook_receiver.js");
  ASSERT_TRUE(rx.ok()) << "tests/peers/approval_webhook_receiver.js did not start";

  ServerHarness server;
  ASSERT_TRUE(server.Start().ok());
  // The operator seals the signing secret to keyd like any credential.
  auto add = [&](const std::string& name, const std::string& type, const std::string& plain) {
    auto keyd = server.CallJson("admin", "GET", "/v1/keyd");
    EXPECT_TRUE(keyd.ok());
    auto pk = Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
    Bytes sealed(plain.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), AsBytes(plain).data(), plain.size(), pk->data());
    long st = 0;
    auto cred =
        server.CallJson("admin", "POST", "/v1/credentials",
                        {{"name", name}, {"type", type}, {"sealed", Base64UrlEncode(sealed)}}, &st);
    EXPECT_EQ(st, 201);
    return cred.ok() ? (*cred)["id"].get<std::string>() : std::string();
  };
  const std::string whsec_id = add("approval-webhook", "webhook_secret", whsec);
  const std::string api_id = add("bank", "api_key", "sk_live_webhooktest0001");
  ASSERT_FALSE(whsec_id.empty());
  PolicySigner signer(server);
  long st = 0;
  auto applied = signer.Apply(
      {{"policy_id", "bank"},
       {"version", 1},
       {"actions",
        {{"bank.pay",
          {{"agents", {"demo-agent"}},
           {"connector", "http"},
           {"credential", api_id},
           {"request",
            {{"method", "POST"},
             {"url", "https://bank.example/pay"},
             {"body", {{"amount", "{{amount}}"}, {"memo", "{{memo}}"}}}}},
           {"params",
            {{"type", "object"},
             {"required", {"amount", "memo"}},
             {"properties", {{"amount", {{"type", "number"}}}, {"memo", {{"type", "string"}}}}}}},
           {"egress", {{{"host", "bank.example"}}}},
           {"approval", {{"approvers", 1}}}}}}}},
      &st);
  ASSERT_EQ(st, 201) << (applied.ok() ? applied->dump() : applied.status().ToString());
  ASSERT_EQ(server.Stop(), 0);

  // The config file names the credential, never the secret.
  const std::string cfg = dir + "/toani.json";
  {
    std::ofstream f(cfg);
    f << json{
        {"approval_webhook_url", "https://127.0.0.1:" + std::to_string(rx.port()) + "/approvals"},
        {"approval_webhook_secret_credential", whsec_id},
        {"approval_webhook_ca", dir + "/cert.pem"},
        {"approval_webhook_timeout_seconds",
         5}}.dump();
  }
  server.extra_args = {"--config", cfg};
  ASSERT_TRUE(server.Start().ok());
  const std::string memo = "MEMO-VALUE-8d1e2f";
  auto auth = server.CallJson(
      "agent", "POST", "/v1/authorize",
      {{"action", "bank.pay"}, {"params", {{"amount", 9876.54}, {"memo", memo}}}}, &st);
  ASSERT_EQ(st, 202) << (auth.ok() ? auth->dump() : "");
  const std::string id = (*auth)["approval_id"];
  json got;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < end) {
    got = rx.Admin(dir + "/cert.pem", "GET", "/deliveries");
    if (got.is_array() && got.size() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(got.is_array() && got.size() >= 2) << got.dump() << "\n"
                                                 << ReadFileOrEmpty(server.log_path());
  EXPECT_EQ(got[0]["answered"], 500);  // retried after the receiver's 500
  EXPECT_EQ(got[1]["answered"], 204);
  for (const auto& d : got) {
    EXPECT_TRUE(d["verified"].get<bool>()) << d.dump();
    EXPECT_EQ(d["headers"]["webhook-id"], "msg_" + id);
    const json p = json::parse(d["body"].get<std::string>());
    EXPECT_EQ(p["type"], "approval.requested");
    EXPECT_EQ(p["data"]["approval_id"], id);
    EXPECT_EQ(p["data"]["agent"], "demo-agent");
    EXPECT_EQ(p["data"]["params_hash"], (*auth)["params_hash"]);
    EXPECT_EQ(p["data"]["policy"]["version"], 1);
    EXPECT_EQ(d["body"].get<std::string>().find(memo), std::string::npos);
    EXPECT_EQ(d["body"].get<std::string>().find("9876"), std::string::npos);
  }
  ASSERT_EQ(server.Stop(), 0);
  // The secret is in no log line, nor in the config file or the server's database in
  // plain text (it is a keyd blob there).
  const std::string key_b64 = whsec.substr(6);
  EXPECT_EQ(ReadFileOrEmpty(server.log_path()).find(key_b64), std::string::npos);
  EXPECT_EQ(ReadFileOrEmpty(cfg).find(key_b64), std::string::npos);
  EXPECT_EQ(ReadFileOrEmpty(server.data_dir() + "/toani.db").find(key_b64), std::string::npos);
  EXPECT_NE(ReadFileOrEmpty(server.log_path()).find("\"delivered\""), std::string::npos);
}

TEST(ApprovalWebhookServerTest, RefusesToStartWithTheSecretInTheConfigFile) {
  ServerHarness server;
  const std::string cfg = server.data_dir() + "-cfg.json";
  {
    std::ofstream f(cfg);
    f << json{{"approval_webhook_url", "https://hooks.example/approvals"},
              {"approval_webhook_secret_credential", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
             .dump();
  }
  server.extra_args = {"--config", cfg};
  Status s = server.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("never the secret itself"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), std::string::npos) << s.message();
  std::remove(cfg.c_str());
}

}  // namespace
}  // namespace toani::testing
