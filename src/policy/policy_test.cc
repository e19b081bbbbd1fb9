#include "policy/policy.h"

#include <gtest/gtest.h>

#include "policy/template.h"

namespace toani::policy {
namespace {

using nlohmann::json;

json Doc() {
  return json::parse(R"({
    "policy_id": "bank", "version": 1,
    "actions": {
      "bank.get_balance": {
        "agents": ["demo-agent"], "connector": "http", "credential": "cred_1",
        "inject": {"kind": "header", "name": "Authorization", "prefix": "Bearer "},
        "request": {"method": "GET", "url": "https://bank.example:8443/v1/accounts/{{account}}/balance",
                    "query": {"currency": "{{currency}}"}, "headers": {"X-Note": "{{note}}"}},
        "params": {"type": "object", "additionalProperties": false, "required": ["account", "currency"],
                   "properties": {"account": {"type": "string", "pattern": "^[0-9]{4,12}$"},
                                  "currency": {"type": "string", "enum": ["EUR", "USD"]},
                                  "note": {"type": "string", "maxLength": 40},
                                  "amount": {"type": "number", "minimum": 0, "maximum": 100}}},
        "egress": [{"host": "bank.example", "port": 8443}]
      }
    }})");
}

TEST(Policy, AllowsNamedAgentWithValidParams) {
  auto p = ParsePolicy(Doc());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::vector<Policy> ps{*p};
  auto d =
      Evaluate(ps, "demo-agent", "bank.get_balance", {{"account", "1234"}, {"currency", "EUR"}});
  EXPECT_TRUE(d.allowed) << d.reason;
  EXPECT_NE(d.reason.find("bank v1"), std::string::npos);
}

TEST(Policy, DeniesByDefault) {
  auto p = ParsePolicy(Doc());
  std::vector<Policy> ps{*p};
  struct Case {
    std::string agent, action;
    json params;
    std::string reason;
  } cases[] = {
      {"demo-agent", "bank.transfer", {{"account", "1234"}}, "deny by default"},
      {"other-agent", "bank.get_balance", {{"account", "1234"}, {"currency", "EUR"}}, "not named"},
      {"demo-agent", "bank.get_balance", {{"account", "12"}, {"currency", "EUR"}}, "pattern"},
      {"demo-agent",
       "bank.get_balance",
       {{"account", "1234"}, {"currency", "GBP"}},
       "allowed values"},
      {"demo-agent", "bank.get_balance", {{"account", "1234"}}, "required"},
      {"demo-agent",
       "bank.get_balance",
       {{"account", "1234"}, {"currency", "EUR"}, {"x", 1}},
       "not an allowed"},
      {"demo-agent", "bank.get_balance", {{"account", 1234}, {"currency", "EUR"}}, "type string"},
      {"demo-agent",
       "bank.get_balance",
       {{"account", "1234"}, {"currency", "EUR"}, {"amount", 100.5}},
       "above maximum"},
      {"demo-agent",
       "bank.get_balance",
       {{"account", "1234"}, {"currency", "EUR"}, {"amount", -0.01}},
       "below minimum"},
      {"demo-agent", "bank.get_balance", json::array(), "JSON object"},
  };
  for (const auto& c : cases) {
    auto d = Evaluate(ps, c.agent, c.action, c.params);
    EXPECT_FALSE(d.allowed) << c.params.dump();
    EXPECT_NE(d.reason.find(c.reason), std::string::npos)
        << d.reason << " (wanted: " << c.reason << ")";
  }
}

TEST(Policy, RefusesBadDocuments) {
  json d = Doc();
  d["version"] = 0;
  EXPECT_FALSE(ParsePolicy(d).ok());
  d = Doc();
  d["actions"]["bank.get_balance"]["request"]["url"] = "https://{{host}}/x";
  EXPECT_FALSE(ParsePolicy(d).ok());
  d = Doc();
  d["actions"]["bank.get_balance"]["request"]["url"] = "http://bank.example/x";
  EXPECT_FALSE(ParsePolicy(d).ok());
  d = Doc();
  d["actions"]["bank.get_balance"]["egress"] = json::array();
  EXPECT_FALSE(ParsePolicy(d).ok());
}

TEST(Template, EncodesEachPositionAndCannotBeInjected) {
  json t = Doc()["actions"]["bank.get_balance"]["request"];
  auto r =
      RenderRequest(t, {{"account", "../../admin?x=1#"}, {"currency", "E&R=1"}, {"note", "ok"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->url,
            "https://bank.example:8443/v1/accounts/..%2F..%2Fadmin%3Fx%3D1%23/"
            "balance?currency=E%26R%3D1");
  EXPECT_EQ(r->host, "bank.example");
  EXPECT_EQ(r->port, 8443);
  auto dots = RenderRequest(t, {{"account", ".."}, {"currency", "EUR"}, {"note", "ok"}});
  ASSERT_TRUE(dots.ok());
  EXPECT_NE(dots->url.find("/accounts/%2E%2E/balance"), std::string::npos);
  auto crlf = RenderRequest(t, {{"account", "1"}, {"currency", "EUR"}, {"note", "a\r\nX-Evil: 1"}});
  EXPECT_FALSE(crlf.ok());
}

TEST(Template, JsonBodyKeepsTypesAndCannotBreak) {
  json t = {{"method", "POST"},
            {"url", "https://api.example/v1/pay"},
            {"body", {{"amount", "{{amount}}"}, {"memo", "note: {{memo}}"}}}};
  auto r = RenderRequest(t, {{"amount", 12.5}, {"memo", "\"}, \"admin\": true, {\""}});
  ASSERT_TRUE(r.ok());
  json body = json::parse(r->body);
  EXPECT_EQ(body["amount"], 12.5);
  EXPECT_EQ(body.size(), 2u);
  EXPECT_EQ(body["memo"], "note: \"}, \"admin\": true, {\"");
}

TEST(Policy, ParamsHashIsCanonical) {
  EXPECT_EQ(ParamsHash(json::parse(R"({"b":1,"a":"x"})")),
            ParamsHash(json::parse(R"({"a":"x","b":1.0})")));
  EXPECT_NE(ParamsHash(json::parse(R"({"a":"x"})")), ParamsHash(json::parse(R"({"a":"y"})")));
  EXPECT_EQ(ParamsHash(json::object()).rfind("sha256:", 0), 0u);
}

}  // namespace
}  // namespace toani::policy
