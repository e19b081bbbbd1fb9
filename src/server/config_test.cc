// The config file: every key documented, unknown keys and bad values refused by name,
// flags-free defaults as documented.
#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace toani::server {
namespace {

TEST(ConfigTest, EveryKeyIsDocumentedWithItsDefault) {
  std::ifstream f(std::string(TOANI_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string doc = ss.str();
  ASSERT_FALSE(doc.empty());
  auto defaults = nlohmann::json::parse(DefaultConfigJson());
  for (const auto& [key, value] : defaults.items()) {
    EXPECT_NE(doc.find("| `" + key + "` |"), std::string::npos) << key << " is not documented";
    // Every key in the file must be accepted by the loader (its default round-trips).
    ServerOptions o;
    EXPECT_TRUE(ApplyConfigText(nlohmann::json{{key, value}}.dump(), &o).ok()) << key;
  }
}

TEST(ConfigTest, ValuesAreApplied) {
  ServerOptions o;
  ASSERT_TRUE(ApplyConfigText(R"({
      // comments are allowed
      "listen": "[::1]:9443", "store": "sqlite:/tmp/x.db", "replay_store": "redis://127.0.0.1:6379",
      "rate_limit_rps": 0, "max_body_bytes": 4096, "mcp_allowed_origins": ["https://a.example"]})",
                              &o)
                  .ok());
  EXPECT_EQ(o.listen_host, "::1");
  EXPECT_EQ(o.port, 9443);
  EXPECT_EQ(o.store, "sqlite:/tmp/x.db");
  EXPECT_EQ(o.replay_store, "redis://127.0.0.1:6379");
  EXPECT_EQ(o.rate_limit_rps, 0);
  EXPECT_EQ(o.max_body_bytes, 4096u);
  EXPECT_EQ(o.mcp_allowed_origins, std::vector<std::string>{"https://a.example"});
}

TEST(ConfigTest, BadFilesAreRefusedNamingTheKey) {
  ServerOptions o;
  for (const char* bad :
       {R"({"listn": "1.2.3.4:1"})", R"({"listen": "nope"})", R"({"listen": "h:70000"})",
        R"({"max_body_bytes": "big"})", R"({"max_body_bytes": 1})", R"({"dev": "yes"})",
        R"({"store": "mysql://x"})", R"({"replay_store": "memcached://x"})",
        R"({"log_level": "loud"})", R"({"witness_dirs": [1]})", "[1]", "{"}) {
    Status st = ApplyConfigText(bad, &o);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ApplyConfigText(R"({"listn": 1})", &o).message().find("listn"), std::string::npos);
  EXPECT_EQ(ApplyConfigFile("/nonexistent/toani.json", &o).code(), StatusCode::kUnavailable);
}

TEST(ConfigTest, ApprovalWebhookKeys) {
  ServerOptions o;
  ASSERT_TRUE(ApplyConfigText(R"({"approval_webhook_url": "https://hooks.example/approvals",
      "approval_webhook_secret_credential": "cred_0123abcd", "approval_webhook_ca": "/etc/ca.pem",
      "approval_webhook_timeout_seconds": 3})",
                              &o)
                  .ok());
  EXPECT_EQ(o.approval_webhook_url, "https://hooks.example/approvals");
  EXPECT_EQ(o.approval_webhook_secret_credential, "cred_0123abcd");
  EXPECT_EQ(o.approval_webhook_ca, "/etc/ca.pem");
  EXPECT_EQ(o.approval_webhook_timeout_seconds, 3);
  // Plain http, a timeout out of range, and the secret itself in the file are refused.
  for (const char* bad : {R"({"approval_webhook_url": "http://hooks.example/a"})",
                          R"({"approval_webhook_timeout_seconds": 0})",
                          R"({"approval_webhook_secret_credential": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZI"})"}) {
    Status st = ApplyConfigText(bad, &o);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.message().find("MfKQ9r8"), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace toani::server
