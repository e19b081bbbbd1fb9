// Connector settings in a policy action, and the response rules.
#include "policy/connector_spec.h"

#include <gtest/gtest.h>

#include "policy/policy.h"

namespace toani::policy {
namespace {

using nlohmann::json;

json Action(json extra) {
  json a = {{"agents", {"a1"}},
            {"connector", "http"},
            {"credential", "cred_1"},
            {"request", {{"method", "GET"}, {"url", "https://api.example/v1"}}},
            {"egress", {{{"host", "api.example"}, {"port", 443}}, {{"host", "*.auth.example"}}}}};
  for (auto it = extra.begin(); it != extra.end(); ++it) a[it.key()] = it.value();
  return a;
}

StatusOr<ConnectorSpec> Parse(json extra) {
  ConnectorSpec s;
  TOANI_RETURN_IF_ERROR(ParseConnectorSpec(Action(std::move(extra)), "actions.x", s));
  return s;
}

TEST(ConnectorSpec, InjectionStyles) {
  auto h = Parse({{"inject", {{"kind", "header"}, {"name", "X-Api-Key"}}}});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->inject.kind, "header");
  EXPECT_EQ(h->inject.name, "X-Api-Key");
  auto q = Parse({{"inject", {{"kind", "query"}, {"name", "api_key"}}}});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->inject.kind, "query");
  auto b = Parse({{"inject", {{"kind", "basic"}, {"username", "svc"}}}});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->inject.username, "svc");
  EXPECT_FALSE(Parse({{"inject", {{"kind", "cookie"}}}}).ok());
  EXPECT_FALSE(Parse({{"inject", {{"kind", "header"}, {"name", "Bad Name"}}}}).ok());
  EXPECT_FALSE(Parse({{"inject", {{"kind", "header"}, {"name", "X"}, {"prefix", "a\r\nb"}}}}).ok());
  EXPECT_FALSE(Parse({{"inject", {{"kind", "query"}, {"name", "a&b"}}}}).ok());
  EXPECT_FALSE(Parse({{"inject", {{"kind", "basic"}, {"username", "a:b"}}}}).ok());
  EXPECT_FALSE(Parse({{"connector", "ftp"}}).ok());
  EXPECT_FALSE(Parse({{"redirects", {{"max", 11}}}}).ok());
}

TEST(ConnectorSpec, FormFieldsAndParameters) {
  auto f = Parse({{"connector", "form"},
                  {"form",
                   {{"encoding", "multipart"},
                    {"fields",
                     {{"user", {{"credential_field", "username"}}},
                      {"pass", {{"credential_field", "password"}}},
                      {"memo", "note: {{memo}}"}}}}}});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->inject.kind, "none");
  auto job = ConnectorJobFields(*f, {{"memo", "hi & bye"}}, Action({})["egress"]);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["form"]["encoding"], "multipart");
  bool saw_memo = false;
  for (const json& fld : (*job)["form"]["fields"]) {
    if (fld["name"] == "memo") {
      EXPECT_EQ(fld["value"], "note: hi & bye");
      saw_memo = true;
    }
    if (fld["name"] == "pass") {
      EXPECT_EQ(fld["credential_field"], "password");
    }
  }
  EXPECT_TRUE(saw_memo);
  EXPECT_FALSE(ConnectorJobFields(*f, json::object(), json::array()).ok());  // missing {{memo}}
  EXPECT_FALSE(Parse({{"connector", "form"}}).ok());
  EXPECT_FALSE(Parse({{"connector", "form"}, {"form", {{"fields", {{"x", 1}}}}}}).ok());
}

TEST(ConnectorSpec, OauthTokenEndpointMustBeAllowListed) {
  auto o =
      Parse({{"connector", "oauth"}, {"oauth", {{"token_url", "https://id.auth.example/token"}}}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->inject.prefix, "Bearer ");
  EXPECT_EQ(o->oauth_client_auth, "basic");
  auto bad =
      Parse({{"connector", "oauth"}, {"oauth", {{"token_url", "https://evil.example/token"}}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("egress"), std::string::npos);
  EXPECT_FALSE(
      Parse({{"connector", "oauth"}, {"oauth", {{"token_url", "http://api.example/t"}}}}).ok());
}

TEST(ConnectorSpec, BrowserStepsComeFromThePolicyOnly) {
  json steps = json::array({{{"goto", "https://api.example/login"}},
                            {{"fill", "#user"}, {"credential_field", "username"}},
                            {{"fill", "#q"}, {"value", "{{query}}"}},
                            {{"click", "button[type=submit]"}},
                            {{"wait_for", "#balance"}},
                            {{"extract", "#balance"}, {"as", "balance"}},
                            {{"screenshot", "after"}}});
  auto b = Parse({{"connector", "browser"}, {"browser", {{"steps", steps}}}});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->steps.size(), 7u);
  auto job = ConnectorJobFields(*b, {{"query", "x"}}, Action({})["egress"]);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["browser"]["steps"][2]["value"], "x");
  EXPECT_FALSE((*job)["browser"]["screenshots"].get<bool>());  // not allowed by default
  // goto outside the allow-list, placeholders in a URL, two ops in one step, unknown ops.
  EXPECT_FALSE(Parse({{"connector", "browser"},
                      {"browser", {{"steps", {{{"goto", "https://other.example/"}}}}}}})
                   .ok());
  EXPECT_FALSE(
      Parse({{"connector", "browser"}, {"browser", {{"steps", {{{"goto", "https://{{host}}/"}}}}}}})
          .ok());
  EXPECT_FALSE(Parse({{"connector", "browser"},
                      {"browser", {{"steps", {{{"click", "#a"}, {"fill", "#b"}}}}}}})
                   .ok());
  EXPECT_FALSE(
      Parse({{"connector", "browser"}, {"browser", {{"steps", {{{"eval", "alert(1)"}}}}}}}).ok());
  EXPECT_FALSE(Parse({{"connector", "browser"}, {"browser", {{"steps", {{{"fill", "#a"}}}}}}})
                   .ok());  // neither value nor credential_field
}

TEST(ConnectorSpec, PolicyParserUsesIt) {
  json doc = {
      {"policy_id", "p"},
      {"version", 1},
      {"actions",
       {{"login.balance", Action({{"connector", "browser"},
                                  {"browser", {{"steps", {{{"goto", "https://api.example/"}}}}}},
                                  {"response", {{"screenshots", true}, {"max_bytes", 4096}}}})}}}};
  auto p = ParsePolicy(doc);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const ActionSpec& a = p->actions.at("login.balance");
  EXPECT_EQ(a.connector, "browser");
  EXPECT_TRUE(a.connector_spec.response.screenshots);
  EXPECT_EQ(a.max_response_bytes, 4096u);
}

TEST(ResponseRules, KeepAndRedactFields) {
  ResponseRules r;
  r.keep_fields = {"/balance", "/account/id"};
  auto kept =
      ApplyResponseRules(r, R"({"balance":12,"account":{"id":"a1","owner":"Ann"},"token":"x"})");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(json::parse(*kept), json::parse(R"({"balance":12,"account":{"id":"a1"}})"));
  ResponseRules red;
  red.redact_fields = {"/account/owner", "/missing"};
  auto redacted = ApplyResponseRules(red, R"({"account":{"id":"a1","owner":"Ann"}})");
  ASSERT_TRUE(redacted.ok());
  EXPECT_EQ(json::parse(*redacted)["account"]["owner"], "[REDACTED]");
  EXPECT_EQ(ApplyResponseRules(r, "not json").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*ApplyResponseRules(ResponseRules{}, "not json"), "not json");
  ConnectorSpec s;
  EXPECT_FALSE(
      ParseConnectorSpec(Action({{"response", {{"keep_fields", {"nopointer"}}}}}), "x", s).ok());
  EXPECT_FALSE(ParseConnectorSpec(Action({{"response", {{"max_bytes", 0}}}}), "x", s).ok());
}

}  // namespace
}  // namespace toani::policy
