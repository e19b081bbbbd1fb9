// The official MCP TypeScript SDK client (npm @modelcontextprotocol/sdk, pinned in
// tests/mcp/package-lock.json) against a real `toani server --dev`: over Streamable HTTP
// with the agent's client certificate, and through `toani mcp-stdio`. It must negotiate
// protocol 2025-11-25, list exactly the actions the agent's policies allow (with their
// parameter schemas), and call one end to end against a local HTTPS target.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "server/https_server.h"
#include "server/pki.h"
#include "server_harness.h"
#include "signed_policy.h"

namespace toani::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kMcpDir = std::string(TOANI_SOURCE_DIR) + "/tests/mcp";

int Shell(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The last line of the node client's output that parses as a JSON object.
json LastJson(const std::string& out) {
  size_t end = out.size();
  while (end > 0) {
    size_t start = out.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    json j = json::parse(out.substr(start, end - start), nullptr, false);
    if (!j.is_discarded() && j.is_object()) return j;
    if (start == 0) break;
    end = start - 1;
  }
  return nullptr;
}

class McpSdkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_GE(sodium_init(), 0);
    server_ = new ServerHarness();
    ASSERT_TRUE(server_->Start().ok()) << ReadFileOrEmpty(server_->log_path());
    const std::string pki = server_->data_dir() + "/pki";
    // A local HTTPS target that wants the credential.
    auto leaf = IssueLeafPem(pki + "/ca.pem", pki + "/ca-key.pem", "mock.toani.test",
                             {"mock.toani.test"}, {}, true);
    ASSERT_TRUE(leaf.ok());
    std::ofstream(pki + "/mock.pem") << leaf->first;
    std::ofstream(pki + "/mock-key.pem") << leaf->second;
    HttpsServerOptions mo;
    mo.threads = 2;
    auto mock = HttpsServer::Start({pki + "/mock.pem", pki + "/mock-key.pem", "", false}, mo,
                                   [](const HttpRequest& r) {
                                     HttpResponse resp;
                                     if (r.Header("authorization") != "Bearer mcp-secret-value") {
                                       resp.status = 401;
                                       resp.body = R"({"error":"bad credential"})";
                                       return resp;
                                     }
                                     ++hits_;
                                     resp.body = json{{"balance", "1234.56"}}.dump();
                                     return resp;
                                   });
    ASSERT_TRUE(mock.ok());
    mock_ = std::move(mock).value().release();
    // The credential, sealed to keyd's intake key.
    auto keyd = server_->CallJson("admin", "GET", "/v1/keyd");
    ASSERT_TRUE(keyd.ok());
    auto intake = Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
    ASSERT_TRUE(intake.ok());
    const std::string secret = "mcp-secret-value";
    Bytes sealed(secret.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), reinterpret_cast<const uint8_t*>(secret.data()), secret.size(),
                    intake->data());
    long code = 0;
    auto cred = server_->CallJson(
        "admin", "POST", "/v1/credentials",
        {{"name", "mcp-bank"}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}}, &code);
    ASSERT_TRUE(cred.ok());
    ASSERT_EQ(code, 201) << cred->dump();
    const std::string cred_id = (*cred)["id"];
    const std::string port = std::to_string(mock_->port());
    auto action = [&](const json& agents, const json& params) {
      return json{
          {"agents", agents},
          {"connector", "http"},
          {"credential", cred_id},
          {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
          {"request",
           {{"method", "GET"},
            {"url", "https://mock.toani.test:" + port + "/v1/accounts/{{account}}"},
            {"headers", {{"Accept", "application/json"}}}}},
          {"params", params},
          {"egress", {{{"host", "mock.toani.test"}, {"port", mock_->port()}}}},
          {"risk_tier", "low"},
          {"token_ttl_seconds", 300}};
    };
    balance_schema_ = {
        {"type", "object"},
        {"additionalProperties", false},
        {"required", {"account"}},
        {"properties", {{"account", {{"type", "string"}, {"pattern", "^[0-9]{4,12}$"}}}}}};
    json policy = {{"policy_id", "mcp-bank"},
                   {"version", 1},
                   {"actions",
                    {{"bank.get_balance", action({"demo-agent"}, balance_schema_)},
                     {"bank.statement", action({"demo-agent", "other-agent"}, balance_schema_)},
                     {"bank.close_account", action({"other-agent"}, balance_schema_)}}}};
    auto applied = PolicySigner(*server_).Apply(policy, &code);
    ASSERT_TRUE(applied.ok());
    ASSERT_EQ(code, 201) << applied->dump();
  }
  static void TearDownTestSuite() {
    if (mock_ != nullptr) mock_->Stop();
    delete mock_;
    mock_ = nullptr;
    delete server_;
    server_ = nullptr;
  }

  static void CheckSession(const json& out, int hits_before) {
    ASSERT_TRUE(out.is_object());
    EXPECT_EQ(out["sdkLatestProtocol"], "2025-11-25");
    EXPECT_EQ(out["protocolVersion"], "2025-11-25") << out.dump();
    EXPECT_EQ(out["serverInfo"]["name"], "toani");
    std::vector<std::string> names;
    for (const auto& t : out["tools"]) names.push_back(t["name"]);
    // Exactly the agent's actions: not bank.close_account (another agent's).
    EXPECT_EQ(names, (std::vector<std::string>{"bank.get_balance", "bank.statement"}));
    for (const auto& t : out["tools"]) EXPECT_EQ(t["inputSchema"], balance_schema_) << t.dump();
    const json& call = out["call"];
    EXPECT_EQ(call.value("isError", true), false) << call.dump();
    EXPECT_NE(call["content"][0]["text"].get<std::string>().find("1234.56"), std::string::npos)
        << call.dump();
    EXPECT_TRUE(call["structuredContent"].contains("receipt")) << call.dump();
    EXPECT_EQ(hits_.load(), hits_before + 1);
    // The credential never reaches the agent.
    EXPECT_EQ(out.dump().find("mcp-secret-value"), std::string::npos);
    EXPECT_EQ(out["unknownError"]["code"], -32602) << out.dump();
  }

  static ServerHarness* server_;
  static HttpsServer* mock_;
  static std::atomic<int> hits_;
  static json balance_schema_;
};
ServerHarness* McpSdkTest::server_ = nullptr;
HttpsServer* McpSdkTest::mock_ = nullptr;
std::atomic<int> McpSdkTest::hits_{0};
json McpSdkTest::balance_schema_;

TEST_F(McpSdkTest, SdkClientOverStreamableHttp) {
  const std::string pki = server_->data_dir() + "/pki";
  std::string out;
  int before = hits_.load();
  int rc = Shell("cd '" + kMcpDir + "' && node mcp_client.mjs http '" + server_->address() +
                     "/mcp' '" + pki + "/ca.pem' '" + pki + "/agent.pem' '" + pki +
                     "/agent-key.pem' bank.get_balance '{\"account\":\"12345678\"}'",
                 &out);
  ASSERT_EQ(rc, 0) << out << "\n--- server log ---\n" << ReadFileOrEmpty(server_->log_path());
  CheckSession(LastJson(out), before);
}

TEST_F(McpSdkTest, SdkClientThroughMcpStdio) {
  std::string out;
  int before = hits_.load();
  int rc = Shell("cd '" + kMcpDir + "' && TOANI_ADDR='" + server_->address() +
                     "' node mcp_client.mjs stdio '" + server_->bin("toani") + "' '" +
                     server_->data_dir() + "' bank.get_balance '{\"account\":\"12345678\"}'",
                 &out);
  ASSERT_EQ(rc, 0) << out;
  CheckSession(LastJson(out), before);
}

TEST_F(McpSdkTest, ForeignOriginAndBadProtocolVersionAreRefused) {
  const std::string pki = server_->data_dir() + "/pki";
  std::string out;
  int rc = Shell("cd '" + kMcpDir + "' && node mcp_probe.mjs '" + server_->address() + "/mcp' '" +
                     pki + "/ca.pem' '" + pki + "/agent.pem' '" + pki + "/agent-key.pem'",
                 &out);
  ASSERT_EQ(rc, 0) << out;
  json j = LastJson(out);
  ASSERT_TRUE(j.is_object()) << out;
  EXPECT_EQ(j["evilOrigin"], 403);
  EXPECT_EQ(j["noOrigin"], 200);
  EXPECT_EQ(j["badVersion"], 400);
  EXPECT_EQ(j["notification"], 202);
  EXPECT_EQ(j["getStream"], 405);
  // A non-agent identity gets no MCP at all.
  auto admin =
      server_->Call("admin", "POST", "/mcp", R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->status, 403);
}

}  // namespace
}  // namespace toani::testing
