// The walking skeleton end to end, against real processes: a `toani server
// --dev` (keyd child, SQLite, bwrap sandboxes, egress proxy) and `toani demo`
// acting as admin and agent.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "server_harness.h"
#include "signed_policy.h"

namespace toani::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string RandomSecret() {
  uint8_t b[24];
  randombytes_buf(b, sizeof b);
  // No well-known prefix on purpose: the log scrubber's shape rules must not be
  // what keeps this value out of the logs.
  return "tst" + HexEncode(std::span<const uint8_t>(b, sizeof b));
}

// Every form in which the credential could leak.
std::vector<std::string> Forms(const std::string& s) {
  return {s, Base64Encode(AsBytes(s)), Base64UrlEncode(AsBytes(s)), HexEncode(AsBytes(s))};
}

void ExpectAbsent(const std::string& haystack, const std::string& secret,
                  const std::string& where) {
  for (const auto& f : Forms(secret)) {
    EXPECT_EQ(haystack.find(f), std::string::npos)
        << "credential (form: " << f.substr(0, 6) << "…) found in " << where;
  }
}

class DemoFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sodium_init() >= 0, true);
    Status st = server_.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ServerHarness server_;
};

TEST_F(DemoFlowTest, DemoRunsEndToEndAndTheCredentialNeverLeaks) {
  const std::string secret = RandomSecret();
  const std::string secret_file = server_.data_dir() + "/../demo-secret.txt";
  { std::ofstream(secret_file) << secret; }
  const std::string out_file = server_.data_dir() + "/../demo.out";
  std::string cmd = "TOANI_ADDR='" + server_.address() + "' '" + server_.bin("toani") +
                    "' demo --data '" + server_.data_dir() + "' --secret-file '" + secret_file +
                    "' > '" + out_file + "' 2>&1";
  int rc = std::system(cmd.c_str());
  const std::string out = ReadFileOrEmpty(out_file);
  fs::remove(secret_file);
  ASSERT_EQ(rc, 0) << out << "\n--- server log ---\n" << ReadFileOrEmpty(server_.log_path());

  // The agent saw the target's answer, and the replay was refused.
  EXPECT_NE(out.find("\"balance\\\":\\\"1234.56\\\""), std::string::npos) << out;
  EXPECT_NE(out.find("refused: HTTP 409"), std::string::npos) << out;
  EXPECT_NE(out.find("demo completed"), std::string::npos);

  // The audit log holds each step and its running root.
  long status = 0;
  auto entries = server_.CallJson("admin", "GET", "/v1/audit/entries", nullptr, &status);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(status, 200);
  std::vector<std::string> types;
  for (const auto& e : (*entries)["entries"]) types.push_back(e["type"]);
  for (const char* want : {"credential.added", "policy.applied", "action.authorized",
                           "execution.started", "execution.finished", "replay.refused"}) {
    EXPECT_NE(std::find(types.begin(), types.end(), want), types.end())
        << "missing audit event " << want;
  }
  auto root = server_.CallJson("admin", "GET", "/v1/audit/root");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ((*root)["size"].get<size_t>(), types.size());
  EXPECT_EQ((*root)["root"].get<std::string>().size(), 64u);

  // Nowhere: not in the agent's output, the audit entries, the server's logs,
  // or any file under the data directory (SQLite db and WAL included).
  ExpectAbsent(out, secret, "the demo's (agent's) output");
  ExpectAbsent(entries->dump(), secret, "the audit entries");
  EXPECT_EQ(server_.Stop(), 0);
  ExpectAbsent(ReadFileOrEmpty(server_.log_path()), secret, "the server log");
  int files = 0;
  for (const auto& f : fs::recursive_directory_iterator(server_.data_dir())) {
    if (!f.is_regular_file()) continue;
    ++files;
    ExpectAbsent(ReadFileOrEmpty(f.path().string()), secret, f.path().string());
  }
  EXPECT_TRUE(fs::exists(server_.data_dir() + "/toani.db"));
  EXPECT_GE(files, 3);
}

TEST_F(DemoFlowTest, TokenIsBoundToItsParametersAndAgent) {
  // A credential and policy through the API (the target is never reached here:
  // every attempt is refused before a sandbox starts).
  auto keyd = server_.CallJson("admin", "GET", "/v1/keyd");
  ASSERT_TRUE(keyd.ok());
  auto pk = Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
  ASSERT_TRUE(pk.ok());
  std::string secret = RandomSecret();
  Bytes sealed(secret.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), AsBytes(secret).data(), secret.size(), pk->data());
  long st = 0;
  auto cred = server_.CallJson(
      "admin", "POST", "/v1/credentials",
      {{"name", "k"}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}}, &st);
  ASSERT_EQ(st, 201) << cred->dump();
  json policy = {
      {"policy_id", "p"},
      {"version", 1},
      {"actions",
       {{"a",
         {{"agents", {"demo-agent"}},
          {"connector", "http"},
          {"credential", (*cred)["id"]},
          {"request", {{"url", "https://target.toani.test:9/x/{{n}}"}}},
          {"params", {{"type", "object"}, {"properties", {{"n", {{"type", "integer"}}}}}}},
          {"egress", {{{"host", "target.toani.test"}, {"port", 9}}}}}}}}};
  auto applied = PolicySigner(server_).Apply(policy, &st);
  ASSERT_EQ(st, 201) << (applied.ok() ? applied->dump() : applied.status().ToString());
  auto auth = server_.CallJson("agent", "POST", "/v1/authorize",
                               {{"action", "a"}, {"params", {{"n", 1}}}}, &st);
  ASSERT_EQ(st, 200) << auth->dump();
  std::string token = (*auth)["token"];
  // Other parameters: refused.
  auto r = server_.CallJson("agent", "POST", "/v1/executions",
                            {{"token", token}, {"params", {{"n", 2}}}}, &st);
  EXPECT_EQ(st, 403) << r->dump();
  // A tampered token: refused.
  std::string bad = token;
  bad[bad.size() / 2] = bad[bad.size() / 2] == 'A' ? 'B' : 'A';
  r = server_.CallJson("agent", "POST", "/v1/executions", {{"token", bad}, {"params", {{"n", 1}}}},
                       &st);
  EXPECT_EQ(st, 401) << r->dump();
  // The admin identity cannot use an agent's token.
  r = server_.CallJson("admin", "POST", "/v1/executions",
                       {{"token", token}, {"params", {{"n", 1}}}}, &st);
  EXPECT_EQ(st, 403) << r->dump();
}

TEST_F(DemoFlowTest, BadInputGetsProblemJsonAndChangesNothing) {
  auto state = [&] {
    auto creds = server_.CallJson("admin", "GET", "/v1/credentials");
    auto root = server_.CallJson("admin", "GET", "/v1/audit/root");
    return std::make_pair(creds->dump(), (*root)["size"].get<int>());
  };
  const auto before = state();
  struct Case {
    std::string who, path, body;
    long want;
  } cases[] = {
      {"admin", "/v1/credentials", "{not json", 400},
      {"admin", "/v1/credentials", "{}", 400},
      {"admin", "/v1/credentials", R"({"name":"x","type":"api_key"})", 400},
      {"admin", "/v1/credentials", R"({"name":"x","type":"api_key","sealed":"!!"})", 400},
      {"admin", "/v1/credentials", R"({"name":"x","type":"api_key","secret":"plain"})", 400},
      {"admin", "/v1/credentials", "[1,2]", 400},
      {"admin", "/v1/policies", "{not json", 400},
      {"admin", "/v1/policies", R"({"policy_id":"p"})", 400},
      {"admin", "/v1/policies", R"({"policy_id":"p","version":1,"actions":{"a":{"agents":["x"]}}})",
       400},
      {"agent", "/v1/authorize", "{not json", 400},
      {"agent", "/v1/authorize", R"({"params":{}})", 400},
      {"agent", "/v1/authorize", R"({"action":"x"})", 400},
      {"agent", "/v1/authorize", R"({"action":"x","params":"no"})", 400},
      {"agent", "/v1/executions", "{not json", 400},
      {"agent", "/v1/executions", R"({"params":{}})", 400},
      {"agent", "/v1/executions", R"({"token":"x"})", 400},
      {"agent", "/v1/credentials", R"({"name":"x","type":"t","sealed":"x"})", 403},
      {"admin", "/v1/authorize", R"({"action":"x","params":{}})", 403},
      {"admin", "/v1/nothing-here", "{}", 404},
  };
  for (const auto& c : cases) {
    auto r = server_.Call(c.who, "POST", c.path, c.body);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, c.want) << c.path << " " << c.body << " -> " << r->body;
    EXPECT_EQ(r->content_type.rfind("application/problem+json", 0), 0u) << c.path << " " << c.body;
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded());
    EXPECT_TRUE(j.contains("title") && j.contains("detail") && j["status"] == c.want) << r->body;
  }
  // Oversize bodies: 413 before any handler runs.
  for (const char* path : {"/v1/credentials", "/v1/policies", "/v1/authorize", "/v1/executions"}) {
    std::string big = R"({"pad":")" + std::string(300 * 1024, 'a') + "\"}";
    auto r = server_.Call(
        path == std::string("/v1/credentials") || path == std::string("/v1/policies") ? "admin"
                                                                                      : "agent",
        "POST", path, big);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 413) << path;
    EXPECT_EQ(r->content_type.rfind("application/problem+json", 0), 0u);
  }
  // Wrong content type.
  auto r = server_.Call("agent", "POST", "/v1/authorize", "action=x",
                        "application/x-www-form-urlencoded");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 415);
  EXPECT_EQ(state(), before) << "bad input changed state";

  // An unknown action: 404, and (on purpose) one action.denied audit entry, nothing else.
  long st = 0;
  auto unknown = server_.CallJson("agent", "POST", "/v1/authorize",
                                  {{"action", "no.such"}, {"params", json::object()}}, &st);
  EXPECT_EQ(st, 404) << unknown->dump();
  auto after = state();
  EXPECT_EQ(after.first, before.first);
  EXPECT_EQ(after.second, before.second + 1);
  auto entries = server_.CallJson("admin", "GET", "/v1/audit/entries");
  EXPECT_EQ((*entries)["entries"].back()["type"], "action.denied");
}

}  // namespace
}  // namespace toani::testing
