// The decision table (issue 5 acceptance): every case names the expected outcome
// and the reason it must give, including the boundary values of each constraint
// kind. Limits use the real SQLite counter.
#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>

#include "common/encoding.h"
#include "crypto/paseto_public.h"
#include "policy/decide.h"
#include "policy/signing.h"

namespace toani::policy {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// 2026-11-23 is a Monday.
SysTime At(const std::string& rfc3339) { return *ParseRfc3339(rfc3339); }
const char* kMonNoon = "2026-11-23T12:00:00Z";

struct Issuer {
  SecretBytes sk;
  std::string paserk;
};

Issuer MakeIssuer() {
  std::array<uint8_t, 32> pk{};
  SecretBytes sk(64);
  crypto_sign_keypair(pk.data(), sk.UnsafeMutableData());
  return {std::move(sk), "k4.public." + Base64UrlEncode(pk)};
}

std::string Proof(const Issuer& is, json claims) {
  return *crypto::PasetoV4PublicSign(is.sk, claims.dump(), "", "");
}

json BankPolicy(const std::string& issuer_key) {
  return json::parse(R"({
    "policy_id": "bank", "version": 7,
    "identity_issuers": [{"issuer": "kyc.example", "public_key": ")" + issuer_key + R"("}],
    "deny": [
      {"id": "blocked-payee", "actions": ["bank.transfer"], "agents": ["*"],
       "when": {"properties": {"to": {"enum": ["DE00BLOCKED"]}}, "required": ["to"]},
       "reason": "payee is blocked"},
      {"id": "no-intern-ops", "actions": ["ops.*"], "agents": ["intern-*"]}
    ],
    "actions": {
      "bank.get_balance": {
        "agents": ["demo-agent", "payments-*"], "connector": "http", "credential": "cred_std",
        "request": {"url": "https://bank.example/v1/{{account}}"},
        "params": {"type": "object", "additionalProperties": false, "required": ["account"],
          "properties": {
            "account": {"type": "string", "pattern": "^[0-9]{4,12}$"},
            "currency": {"type": "string", "enum": ["EUR", "USD"]},
            "kind": {"const": "checking"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "memo": {"type": "string", "minLength": 2, "maxLength": 5},
            "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string", "maxLength": 3}}
          }},
        "egress": [{"host": "bank.example"}]
      },
      "bank.transfer": {
        "agents": ["demo-agent", "busy-agent", "spender"], "connector": "http", "credential": "cred_std",
        "request": {"method": "POST", "url": "https://bank.example/v1/transfers", "body": {"amount": "{{amount}}"},
                    "headers": {"X-Payee": "{{to}}"}},
        "params": {"type": "object", "additionalProperties": false, "required": ["amount", "to"],
          "properties": {"amount": {"type": "number", "minimum": 0}, "to": {"type": "string"}}},
        "egress": [{"host": "bank.example"}],
        "risk_tier": "medium",
        "approval": {"approvers": 1, "when": {"properties": {"amount": {"minimum": 1000}}}},
        "rate_limits": [{"per": "agent", "max": 3, "window_seconds": 60}],
        "budget": {"param": "amount", "max_per_day": 2500, "per": "agent"}
      },
      "bank.close_account": {
        "agents": ["demo-agent"], "connector": "http", "credential": "cred_std",
        "request": {"method": "DELETE", "url": "https://bank.example/v1/x"},
        "egress": [{"host": "bank.example"}], "risk_tier": "high"
      },
      "ops.reboot": {
        "agents": ["*"], "connector": "http", "credential": "cred_std",
        "request": {"method": "POST", "url": "https://ops.example/reboot"},
        "egress": [{"host": "ops.example"}], "risk_tier": "critical"
      },
      "vault.read": {
        "agents": ["demo-agent"], "connector": "http", "credential": "cred_priv",
        "request": {"url": "https://vault.example/x"}, "egress": [{"host": "vault.example"}]
      },
      "hr.read": {
        "agents": ["demo-agent"], "connector": "http", "credential": "cred_personal",
        "request": {"url": "https://hr.example/x"}, "egress": [{"host": "hr.example"}]
      },
      "kyc.open": {
        "agents": ["demo-agent"], "connector": "http", "credential": "cred_kyc",
        "request": {"url": "https://kyc.example/x"}, "egress": [{"host": "kyc.example"}]
      },
      "desk.trade": {
        "agents": ["demo-agent"], "connector": "http", "credential": "cred_std",
        "request": {"url": "https://desk.example/x"}, "egress": [{"host": "desk.example"}],
        "time_windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:30",
                          "utc_offset": "+01:00"},
                         {"days": ["sat"], "from": "22:00", "to": "02:00"}]
      },
      "shared.ping": {
        "agents": ["demo-agent"], "connector": "http", "credential": "cred_std",
        "request": {"url": "https://ping.example/x"}, "egress": [{"host": "ping.example"}],
        "rate_limits": [{"per": "action", "max": 2, "window_seconds": 3600}]
      }
    }})");
}

struct Case {
  std::string name;
  std::string agent;
  std::string action;
  json params;
  Outcome want;
  std::string rule;
  std::string reason;  // substring of the reason
  std::string now = kMonNoon;
  std::string user;
  std::string proof;
  int warmup = 0;  // identical requests made first (rate limits, budgets)
  int approvers = 0;
};

class DecisionTable : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = fs::temp_directory_path() / ("toani-decide-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    auto c = store::OpenSqliteLimitCounter((dir_ / "t.db").string());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    counter_ = std::move(c).value();
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::unique_ptr<store::LimitCounter> counter_;
};

TEST_F(DecisionTable, EveryCaseGivesItsOutcomeAndReason) {
  Issuer kyc = MakeIssuer();
  Issuer rogue = MakeIssuer();
  auto parsed = ParsePolicy(BankPolicy(kyc.paserk));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  std::vector<Policy> policies{*parsed};
  const json acct = {{"account", "1234"}};
  auto with = [&](json extra) {
    json p = acct;
    p.update(extra);
    return p;
  };
  auto proof = [&](const Issuer& is, json over) {
    json c = {{"iss", "kyc.example"}, {"sub", "alice"}, {"aud", "toani:dev"},
              {"exp", "2026-11-23T13:00:00Z"}};
    c.update(over);
    return Proof(is, c);
  };
  const Outcome A = Outcome::kAllow, D = Outcome::kDeny, H = Outcome::kApprovalRequired;
  std::vector<Case> cases = {
      // agents and actions
      {"allowed", "demo-agent", "bank.get_balance", acct, A, "allow", "allowed by bank v7"},
      {"unknown action", "demo-agent", "bank.nope", acct, D, "default_deny", "deny by default"},
      {"agent not named", "other", "bank.get_balance", acct, D, "agent", "is not named by bank v7"},
      {"agent prefix selector", "payments-eu", "bank.get_balance", acct, A, "allow", "allowed"},
      {"prefix needs the dash", "payments", "bank.get_balance", acct, D, "agent", "not named"},
      {"wildcard agent", "anyone", "ops.reboot", json::object(), H, "approval", "risk tier critical", kMonNoon, "", "", 0, 2},
      {"explicit deny beats wildcard allow", "intern-7", "ops.reboot", json::object(), D, "deny_rule", "'no-intern-ops'"},
      {"explicit deny on params", "demo-agent", "bank.transfer", {{"amount", 5}, {"to", "DE00BLOCKED"}}, D, "deny_rule", "payee is blocked"},
      {"deny rule when not matching", "demo-agent", "bank.transfer", {{"amount", 5}, {"to", "DE00OK"}}, A, "allow", "allowed"},
      // type, enum, const
      {"type", "demo-agent", "bank.get_balance", {{"account", 1234}}, D, "params", "must be of type string"},
      {"enum in", "demo-agent", "bank.get_balance", with({{"currency", "USD"}}), A, "allow", "allowed"},
      {"enum out", "demo-agent", "bank.get_balance", with({{"currency", "usd"}}), D, "params", "not one of the allowed values"},
      {"const equal", "demo-agent", "bank.get_balance", with({{"kind", "checking"}}), A, "allow", "allowed"},
      {"const differs", "demo-agent", "bank.get_balance", with({{"kind", "savings"}}), D, "params", "must equal the constant"},
      // minimum / maximum (inclusive), integer type
      {"minimum boundary", "demo-agent", "bank.get_balance", with({{"limit", 1}}), A, "allow", "allowed"},
      {"below minimum", "demo-agent", "bank.get_balance", with({{"limit", 0}}), D, "params", "below minimum 1"},
      {"maximum boundary", "demo-agent", "bank.get_balance", with({{"limit", 100}}), A, "allow", "allowed"},
      {"above maximum", "demo-agent", "bank.get_balance", with({{"limit", 101}}), D, "params", "above maximum 100"},
      {"integer as 5.0", "demo-agent", "bank.get_balance", with({{"limit", 5.0}}), A, "allow", "allowed"},
      {"integer type", "demo-agent", "bank.get_balance", with({{"limit", 5.5}}), D, "params", "type integer"},
      // exclusive bounds
      {"exclusiveMinimum equal", "demo-agent", "bank.get_balance", with({{"ratio", 0}}), D, "params", "greater than exclusiveMinimum 0"},
      {"exclusiveMinimum above", "demo-agent", "bank.get_balance", with({{"ratio", 0.0001}}), A, "allow", "allowed"},
      {"exclusiveMaximum equal", "demo-agent", "bank.get_balance", with({{"ratio", 1}}), D, "params", "less than exclusiveMaximum 1"},
      {"exclusiveMaximum below", "demo-agent", "bank.get_balance", with({{"ratio", 0.9999}}), A, "allow", "allowed"},
      // lengths (code points, not bytes)
      {"minLength boundary", "demo-agent", "bank.get_balance", with({{"memo", "ab"}}), A, "allow", "allowed"},
      {"below minLength", "demo-agent", "bank.get_balance", with({{"memo", "a"}}), D, "params", "too short (minLength 2)"},
      {"maxLength boundary multibyte", "demo-agent", "bank.get_balance", with({{"memo", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"}}), A, "allow", "allowed"},
      {"header CRLF refused", "demo-agent", "bank.transfer", {{"amount", 1}, {"to", "x\r\nX-Evil: 1"}}, D, "params", "control character"},
      {"above maxLength", "demo-agent", "bank.get_balance", with({{"memo", "abcdef"}}), D, "params", "too long (maxLength 5)"},
      // pattern (RE2), required, additionalProperties
      {"pattern 4 digits", "demo-agent", "bank.get_balance", {{"account", "1234"}}, A, "allow", "allowed"},
      {"pattern 3 digits", "demo-agent", "bank.get_balance", {{"account", "123"}}, D, "params", "does not match the pattern"},
      {"pattern 13 digits", "demo-agent", "bank.get_balance", {{"account", "1234567890123"}}, D, "params", "does not match the pattern"},
      {"pattern newline", "demo-agent", "bank.get_balance", {{"account", "1234\n"}}, D, "params", "does not match the pattern"},
      {"required", "demo-agent", "bank.get_balance", json::object(), D, "params", "'account' is required"},
      {"additionalProperties", "demo-agent", "bank.get_balance", with({{"admin", true}}), D, "params", "'admin' is not an allowed parameter"},
      {"params not an object", "demo-agent", "bank.get_balance", json::array(), D, "params", "must be a JSON object"},
      // items, maxItems, minItems
      {"maxItems boundary", "demo-agent", "bank.get_balance", with({{"tags", {"a", "b"}}}), A, "allow", "allowed"},
      {"above maxItems", "demo-agent", "bank.get_balance", with({{"tags", {"a", "b", "c"}}}), D, "params", "too many items (maxItems 2)"},
      {"below minItems", "demo-agent", "bank.get_balance", with({{"tags", json::array()}}), D, "params", "too few items (minItems 1)"},
      {"items schema", "demo-agent", "bank.get_balance", with({{"tags", {"abcd"}}}), D, "params", "params.tags[0]: is too long"},
      // approval rules, risk tiers, credential sensitivity
      {"approval when below threshold", "demo-agent", "bank.transfer", {{"amount", 999.99}, {"to", "x"}}, A, "allow", "allowed"},
      {"approval when at threshold", "demo-agent", "bank.transfer", {{"amount", 1000}, {"to", "x"}}, H, "approval", "the action's approval rule", kMonNoon, "", "", 0, 1},
      {"risk tier high", "demo-agent", "bank.close_account", json::object(), H, "approval", "risk tier high", kMonNoon, "", "", 0, 1},
      {"privileged credential", "demo-agent", "vault.read", json::object(), H, "approval", "credential is privileged", kMonNoon, "", "", 0, 2},
      {"personal credential", "demo-agent", "hr.read", json::object(), H, "approval", "credential is personal", kMonNoon, "", "", 0, 1},
      // KYC-gated: identity proofs
      {"kyc without proof", "demo-agent", "kyc.open", json::object(), D, "identity_proof", "an identity proof is required"},
      {"kyc valid proof", "demo-agent", "kyc.open", json::object(), A, "allow", "allowed", kMonNoon, "alice", "kyc:valid"},
      {"kyc proof for another user", "demo-agent", "kyc.open", json::object(), D, "identity_proof", "names user 'alice', not 'bob'", kMonNoon, "bob", "kyc:valid"},
      {"kyc expired proof", "demo-agent", "kyc.open", json::object(), D, "identity_proof", "has expired", "2026-11-23T13:00:00Z", "", "kyc:valid"},
      {"kyc rogue issuer key", "demo-agent", "kyc.open", json::object(), D, "identity_proof", "not signed by an issuer", kMonNoon, "", "kyc:rogue"},
      {"kyc wrong audience", "demo-agent", "kyc.open", json::object(), D, "identity_proof", "aud must be 'toani:dev'", kMonNoon, "", "kyc:aud"},
      {"kyc wrong iss", "demo-agent", "kyc.open", json::object(), D, "identity_proof", "iss is not 'kyc.example'", kMonNoon, "", "kyc:iss"},
      // time windows: [from, to) in the window's offset; one spans midnight
      {"window opens 09:00 +01:00", "demo-agent", "desk.trade", json::object(), A, "allow", "allowed", "2026-11-23T08:00:00Z"},
      {"window before open", "demo-agent", "desk.trade", json::object(), D, "time_window", "outside the time windows", "2026-11-23T07:59:59Z"},
      {"window closes 17:30 +01:00", "demo-agent", "desk.trade", json::object(), D, "time_window", "outside the time windows", "2026-11-23T16:30:00Z"},
      {"window last minute", "demo-agent", "desk.trade", json::object(), A, "allow", "allowed", "2026-11-23T16:29:59Z"},
      {"window sunday", "demo-agent", "desk.trade", json::object(), D, "time_window", "outside", "2026-11-29T12:00:00Z"},
      {"window across midnight", "demo-agent", "desk.trade", json::object(), A, "allow", "allowed", "2026-11-28T23:30:00Z"},
      // rate limits and budgets (per agent / per action)
      {"rate limit at max", "busy-agent", "bank.transfer", {{"amount", 1}, {"to", "x"}}, A, "allow", "allowed", kMonNoon, "", "", 2},
      {"rate limit over max", "busy-agent", "bank.transfer", {{"amount", 1}, {"to", "x"}}, D, "rate_limit", "3 per 60 s per agent exceeded"},
      {"rate limit next window", "busy-agent", "bank.transfer", {{"amount", 1}, {"to", "x"}}, A, "allow", "allowed", "2026-11-23T12:01:00Z"},
      {"per-action limit at max", "demo-agent", "shared.ping", json::object(), A, "allow", "allowed", kMonNoon, "", "", 1},
      {"per-action limit shared", "demo-agent", "shared.ping", json::object(), D, "rate_limit", "2 per 3600 s per action exceeded"},
      {"budget to the cent", "spender", "bank.transfer", {{"amount", 833.33}, {"to", "x"}}, A, "allow", "allowed", kMonNoon, "", "", 2},
      {"budget exceeded", "spender", "bank.transfer", {{"amount", 0.02}, {"to", "x"}}, D, "budget", "amount sums to at most 2500 per day exceeded", "2026-11-23T12:05:00Z"},
      {"budget resets next day", "spender", "bank.transfer", {{"amount", 900}, {"to", "x"}}, A, "allow", "allowed", "2026-11-24T00:00:00Z"},
  };
  std::map<std::string, std::string> proofs = {
      {"kyc:valid", proof(kyc, json::object())},
      {"kyc:rogue", proof(rogue, json::object())},
      {"kyc:aud", proof(kyc, {{"aud", "toani:other"}})},
      {"kyc:iss", proof(kyc, {{"iss", "evil.example"}})},
  };
  DecisionEnv env;
  env.limits = counter_.get();
  env.sensitivity = [](const std::string& id) {
    if (id == "cred_priv") return Sensitivity::kPrivileged;
    if (id == "cred_personal") return Sensitivity::kPersonal;
    if (id == "cred_kyc") return Sensitivity::kKycGated;
    return Sensitivity::kStandard;
  };
  int checked = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    DecisionRequest req;
    req.tenant = "dev";
    req.agent = c.agent;
    req.action = c.action;
    req.params = &c.params;
    req.now = At(c.now);
    req.user = c.user;
    req.identity_proof = c.proof.empty() ? "" : proofs.at(c.proof);
    for (int i = 0; i < c.warmup; ++i) {
      ASSERT_TRUE(Decide(policies, req, env).allowed()) << "warm-up " << i;
    }
    FullDecision d = Decide(policies, req, env);
    EXPECT_EQ(OutcomeName(d.outcome), std::string(OutcomeName(c.want))) << d.reason;
    EXPECT_EQ(d.rule, c.rule) << d.reason;
    EXPECT_NE(d.reason.find(c.reason), std::string::npos)
        << "reason: " << d.reason << "\nwanted: " << c.reason;
    if (c.want == H) {
      EXPECT_EQ(d.approvers_required, c.approvers);
    }
    if (c.proof == "kyc:valid" && c.want == A) {
      EXPECT_EQ(d.user, "alice");
    }
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

TEST_F(DecisionTable, SimulateExplainsAndChangesNothing) {
  Issuer kyc = MakeIssuer();
  auto parsed = ParsePolicy(BankPolicy(kyc.paserk));
  ASSERT_TRUE(parsed.ok());
  std::vector<Policy> policies{*parsed};
  json p = {{"amount", 10}, {"to", "x"}};
  DecisionRequest req{"dev", "busy-agent", "bank.transfer", &p, At(kMonNoon), "", ""};
  DecisionEnv sim;
  sim.limits = counter_.get();
  sim.dry_run = true;
  for (int i = 0; i < 10; ++i) {
    FullDecision d = Decide(policies, req, sim);
    ASSERT_TRUE(d.allowed()) << d.reason;
    ASSERT_TRUE(d.explain.is_array());
    std::string all = d.explain.dump();
    EXPECT_NE(all.find("rate_limit"), std::string::npos) << all;
    EXPECT_NE(all.find("budget"), std::string::npos) << all;
  }
  // The counters were not touched: three real decisions still pass.
  DecisionEnv real;
  real.limits = counter_.get();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Decide(policies, req, real).allowed());
  EXPECT_EQ(Decide(policies, req, real).rule, "rate_limit");
  // And simulate now explains the limit that denies.
  FullDecision d = Decide(policies, req, sim);
  EXPECT_EQ(d.rule, "rate_limit");
  EXPECT_NE(d.explain.dump().find("exceeded"), std::string::npos);
}

TEST_F(DecisionTable, LimitsWithoutACounterFailClosed) {
  auto parsed = ParsePolicy(BankPolicy(MakeIssuer().paserk));
  ASSERT_TRUE(parsed.ok());
  std::vector<Policy> policies{*parsed};
  json p = {{"amount", 1}, {"to", "x"}};
  DecisionRequest req{"dev", "demo-agent", "bank.transfer", &p, At(kMonNoon), "", ""};
  FullDecision d = Decide(policies, req, DecisionEnv{});
  EXPECT_EQ(d.outcome, Outcome::kDeny);
  EXPECT_EQ(d.rule, "limits_unavailable");
}

TEST(PolicyParse, RefusesWhatWouldSilentlyWeakenAPolicy) {
  auto base = BankPolicy(MakeIssuer().paserk);
  auto refuse = [&](const std::function<void(json&)>& edit, const std::string& want) {
    json d = base;
    edit(d);
    auto p = ParsePolicy(d);
    ASSERT_FALSE(p.ok()) << want;
    EXPECT_NE(p.status().message().find(want), std::string::npos) << p.status().message();
  };
  auto get = [](json& d) -> json& { return d["actions"]["bank.get_balance"]; };
  refuse([&](json& d) { get(d)["params"]["properties"]["limit"]["maximun"] = 5; }, "maximun: is not a supported keyword");
  refuse([&](json& d) { get(d)["params"]["properties"]["account"]["pattern"] = "(unclosed"; }, "not valid RE2");
  refuse([&](json& d) { get(d)["risk_tier"] = "extreme"; }, "risk_tier");
  refuse([&](json& d) { get(d)["approval"] = {{"approvers", 9}}; }, "approvers: an integer 0..5");
  refuse([&](json& d) { get(d)["rate_limits"] = {{{"max", 0}}}; }, "max: an integer >= 1");
  refuse([&](json& d) { get(d)["rate_limits"] = {{{"max", 1}, {"per", "user"}}}; }, ".per");
  refuse([&](json& d) { get(d)["budget"] = {{"param", "limit"}, {"max_per_day", 5}}; }, "must be a required parameter");
  refuse([&](json& d) { get(d)["time_windows"] = {{{"from", "25:00"}}}; }, "not a time of day");
  refuse([&](json& d) { get(d)["time_windows"] = {{{"days", {"someday"}}}}; }, "days");
  refuse([&](json& d) { d["deny"][0]["actions"] = {"bad name!"}; }, "deny[0].actions");
  refuse([&](json& d) { d["deny"][0]["whne"] = json::object(); }, "deny[0].whne: unknown field");
  refuse([&](json& d) { d["identity_issuers"][0]["public_key"] = "k4.public.AAAA"; }, "k4.public");
  refuse([&](json& d) { get(d)["agents"] = {"a*b"}; }, "bad agent name");
}

}  // namespace
}  // namespace toani::policy
