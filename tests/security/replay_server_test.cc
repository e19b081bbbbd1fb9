// Single use through the real server: 100 concurrent POST /v1/executions of one token
// run exactly one execution — with the embedded replay store and with Redis 7 (a real
// redis-server started and stopped by the test). With Redis stopped, an execution fails
// closed: 503 with a clear problem, and nothing runs (no execution.started entry).
#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "integration/server_harness.h"
#include "integration/signed_policy.h"
#include "security/redis_server.h"

namespace toani {
namespace {

using nlohmann::json;
using toani::testing::ServerHarness;

constexpr int kConcurrent = 100;

class ReplayServerTest : public ::testing::TestWithParam<bool /*redis*/> {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    if (GetParam()) {
      ASSERT_TRUE(redis_.Start()) << "redis-server did not start";
      server_.extra_args = {"--replay-store", redis_.url()};
    }
    Status st = server_.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    // A credential (sealed to keyd) and a policy whose target refuses connections: the
    // one execution that runs fails quickly, which is all this test needs.
    auto keyd = server_.CallJson("admin", "GET", "/v1/keyd");
    ASSERT_TRUE(keyd.ok());
    auto pk = Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
    ASSERT_TRUE(pk.ok());
    const std::string secret = "replay-test-secret-value";
    Bytes sealed(secret.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), AsBytes(secret).data(), secret.size(), pk->data());
    long code = 0;
    auto cred = server_.CallJson(
        "admin", "POST", "/v1/credentials",
        {{"name", "k"}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}}, &code);
    ASSERT_EQ(code, 201);
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
    auto applied = testing::PolicySigner(server_).Apply(policy, &code);
    ASSERT_EQ(code, 201) << (applied.ok() ? applied->dump() : applied.status().ToString());
  }

  std::string Authorize(int n) {
    long code = 0;
    auto auth = server_.CallJson("agent", "POST", "/v1/authorize",
                                 {{"action", "a"}, {"params", {{"n", n}}}}, &code);
    EXPECT_EQ(code, 200);
    return auth.ok() ? auth->value("token", "") : "";
  }

  // Audit entries of `type` for the token with this jti-bearing execution params.
  int CountAudit(const std::string& type) {
    auto entries = server_.CallJson("admin", "GET", "/v1/audit/entries");
    if (!entries.ok()) return -1;
    int n = 0;
    const json& list = entries->contains("entries") ? (*entries)["entries"] : *entries;
    for (const auto& e : list) {
      const json entry = e.contains("entry") && e["entry"].is_string()
                             ? json::parse(e["entry"].get<std::string>(), nullptr, false)
                             : (e.contains("entry") ? e["entry"] : e);
      if (entry.is_object() && entry.value("type", "") == type) ++n;
    }
    return n;
  }

  testing::RedisServer redis_;
  ServerHarness server_;
};

TEST_P(ReplayServerTest, HundredConcurrentExecutionsOfOneTokenRunOnce) {
  const std::string token = Authorize(1);
  ASSERT_FALSE(token.empty());
  std::atomic<int> conflict{0}, unavailable{0}, ran{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kConcurrent; ++i) {
    threads.emplace_back([&] {
      long code = 0;
      auto r = server_.CallJson("agent", "POST", "/v1/executions",
                                {{"token", token}, {"params", {{"n", 1}}}}, &code);
      if (code == 409) {
        ++conflict;
      } else if (code == 503) {
        ++unavailable;
      } else if (r.ok() && r->contains("execution_id")) {
        ++ran;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(conflict.load(), kConcurrent - 1);
  EXPECT_EQ(unavailable.load(), 0);
  EXPECT_EQ(CountAudit("execution.started"), 1);
  EXPECT_EQ(CountAudit("replay.refused"), kConcurrent - 1);
}

TEST_P(ReplayServerTest, RedisDownFailsClosedAndNothingRuns) {
  if (!GetParam()) GTEST_SKIP() << "Redis only";
  const std::string token = Authorize(2);
  ASSERT_FALSE(token.empty());
  redis_.Stop();
  long code = 0;
  auto r = server_.Call("agent", "POST", "/v1/executions",
                        json{{"token", token}, {"params", {{"n", 2}}}}.dump());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_NE(r->body.find("replay store unavailable"), std::string::npos) << r->body;
  (void)code;
  EXPECT_EQ(CountAudit("execution.started"), 0);
}

INSTANTIATE_TEST_SUITE_P(Stores, ReplayServerTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Redis" : "Embedded"; });

}  // namespace
}  // namespace toani
