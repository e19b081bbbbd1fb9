// YAML policy input: the YAML and JSON forms of a policy sign to the same canonical
// bytes (and, Ed25519 being deterministic, the same signature); YAML features that have
// no JSON meaning are refused with a message naming the line.
#include "policy/yaml.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include "common/jcs.h"
#include "policy/policy.h"
#include "policy/signing.h"

namespace toani::policy {
namespace {

using nlohmann::json;

constexpr const char* kJson = R"({
  "policy_id": "bank",
  "version": 4,
  "tenant": "dev",
  "deny": [
    {"id": "blocked-payee", "actions": ["bank.transfer"], "agents": ["*"],
     "when": {"required": ["to"], "properties": {"to": {"enum": ["DE00BLOCKED"]}}},
     "reason": "payee is on the block list"}
  ],
  "actions": {
    "bank.transfer": {
      "agents": ["payments-*"],
      "connector": "http",
      "credential": "cred_cc8115819fdc9a04",
      "inject": {"kind": "header", "name": "Authorization", "prefix": "Bearer "},
      "request": {
        "method": "POST",
        "url": "https://bank.example/v1/accounts/{{from}}/transfers",
        "headers": {"Idempotency-Key": "{{ref}}"},
        "body": {"amount": "{{amount}}", "to": "{{to}}", "memo": "agent: {{ref}}"}
      },
      "params": {
        "type": "object", "additionalProperties": false,
        "required": ["from", "to", "amount", "ref"],
        "properties": {
          "from": {"type": "string", "pattern": "^[0-9]{8}$"},
          "to": {"type": "string", "pattern": "^[A-Z]{2}[0-9A-Z]{10,30}$"},
          "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 5000.5},
          "ref": {"type": "string", "minLength": 8, "maxLength": 36}
        }
      },
      "egress": [{"host": "bank.example", "port": 443}],
      "risk_tier": "medium",
      "approval": {"approvers": 1, "ttl_seconds": 900, "deny_cooldown_seconds": 3600,
                   "when": {"properties": {"amount": {"minimum": 1000}}}},
      "rate_limits": [{"per": "agent", "max": 10, "window_seconds": 60},
                      {"per": "action", "max": 500, "window_seconds": 86400}],
      "time_windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                        "from": "08:00", "to": "18:00", "utc_offset": "+01:00"}],
      "token_ttl_seconds": 120,
      "response": {"max_bytes": 65536, "screenshots": false, "redact_fields": ["/account"]}
    }
  }
})";

// The same document in YAML, using what a person writing YAML would: comments, block
// and flow style, quoted and plain scalars, an anchor and alias, a literal block.
constexpr const char* kYaml = R"(# the bank policy, YAML form
policy_id: bank
version: 4
tenant: "dev"
deny:
  - id: blocked-payee
    actions: [bank.transfer]
    agents: ["*"]
    when:
      required: [to]
      properties:
        to: {enum: [DE00BLOCKED]}
    reason: payee is on the block list
actions:
  bank.transfer:
    agents: [payments-*]
    connector: http
    credential: cred_cc8115819fdc9a04
    inject: {kind: header, name: Authorization, prefix: "Bearer "}
    request:
      method: POST
      url: https://bank.example/v1/accounts/{{from}}/transfers
      headers:
        Idempotency-Key: "{{ref}}"
      body:
        amount: "{{amount}}"
        to: '{{to}}'
        memo: "agent: {{ref}}"
    params:
      type: object
      additionalProperties: false
      required: [from, to, amount, ref]
      properties:
        from: {type: string, pattern: "^[0-9]{8}$"}
        to: {type: string, pattern: '^[A-Z]{2}[0-9A-Z]{10,30}$'}
        amount: {type: number, exclusiveMinimum: 0, maximum: 5000.5}
        ref: {type: string, minLength: 8, maxLength: 36}
    egress:
      - host: bank.example
        port: 443
    risk_tier: medium
    approval:
      approvers: 1
      ttl_seconds: 900
      deny_cooldown_seconds: 3600
      when:
        properties:
          amount: {minimum: 1000}
    rate_limits:
      - &agent_limit {per: agent, max: 10, window_seconds: 60}
      - {per: action, max: 500, window_seconds: 86400}
    time_windows:
      - days: [mon, tue, wed, thu, fri]
        from: "08:00"
        to: "18:00"
        utc_offset: "+01:00"
    token_ttl_seconds: 120
    response:
      max_bytes: 65536
      screenshots: false
      redact_fields: [/account]
)";

TEST(PolicyYaml, YamlAndJsonSignToTheSameCanonicalBytes) {
  ASSERT_GE(sodium_init(), 0);
  auto y = YamlToJson(kYaml);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  json j = json::parse(kJson);
  EXPECT_EQ(*y, j) << y->dump(1);
  EXPECT_EQ(CanonicalizeJson(*y), CanonicalizeJson(j));
  // Typed the same way: integers stay integers, quoted "dev" and "08:00" are strings.
  EXPECT_TRUE((*y)["version"].is_number_integer());
  EXPECT_TRUE((*y)["actions"]["bank.transfer"]["response"]["screenshots"].is_boolean());
  // Same key, same bytes: the signatures are identical, and both parse as policies.
  PolicyKeyPair k = GeneratePolicyKey();
  auto sy = SignPolicy(*y, k.secret);
  auto sj = SignPolicy(j, k.secret);
  ASSERT_TRUE(sy.ok() && sj.ok());
  EXPECT_EQ((*sy)["signatures"], (*sj)["signatures"]);
  auto py = ParseSignedPolicy(*sy);
  ASSERT_TRUE(py.ok());
  EXPECT_EQ(py->canonical, CanonicalizeJson(j));
  auto pk = ParsePublicKey(k.public_key);
  ASSERT_TRUE(pk.ok());
  const json& sig = (*sj)["signatures"][0];
  EXPECT_TRUE(VerifyPolicySignature(py->canonical, {sig["keyid"], sig["sig"]}, *pk).ok());
  // And the converted document is a valid policy.
  auto parsed = ParsePolicy(*y);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
}

TEST(PolicyYaml, AnchorsAndScalarTyping) {
  auto y = YamlToJson(R"(
base: &b {per: agent, max: 10}
copy: *b
ints: [0, -7, +8, 0x1f, 0o17, 12345678901]
floats: [1.5, -0.25, 1e3, .5]
strings: [yes, no, on, "1", '2.0', 0x, 1.2.3, -, 'true', "null", 08:00]
nulls: [~, null, ]
bools: [true, false, True, FALSE]
block: |
  line one
  line two
)");
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ((*y)["copy"], (*y)["base"]);
  EXPECT_EQ((*y)["ints"], json({0, -7, 8, 31, 15, 12345678901LL}));
  EXPECT_EQ((*y)["floats"], json({1.5, -0.25, 1000.0, 0.5}));
  EXPECT_EQ((*y)["strings"],
            json({"yes", "no", "on", "1", "2.0", "0x", "1.2.3", "-", "true", "null", "08:00"}));
  EXPECT_EQ((*y)["nulls"], json({nullptr, nullptr}));
  EXPECT_EQ((*y)["bools"], json({true, false, true, false}));
  EXPECT_EQ((*y)["block"], "line one\nline two\n");
}

void ExpectRefused(const std::string& yaml, const std::string& message_part) {
  auto y = YamlToJson(yaml);
  ASSERT_FALSE(y.ok()) << "accepted: " << yaml << " -> " << y->dump();
  EXPECT_EQ(y.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(y.status().message().find(message_part), std::string::npos)
      << yaml << " -> " << y.status().message();
}

TEST(PolicyYaml, RefusesWhatDoesNotMapToJson) {
  ExpectRefused("a: !!binary aGVsbG8=\n", "tags are not supported");
  ExpectRefused("a: !!str 5\n", "tags are not supported");
  ExpectRefused("a: !custom {x: 1}\n", "tags are not supported");
  ExpectRefused("!!map {a: 1}\n", "tags are not supported");
  ExpectRefused("? !!int 5\n: x\n", "tags are not supported");
  ExpectRefused("a: 1\nb: 2\na: 3\n", "duplicate key 'a'");
  ExpectRefused("a: 1\nb: 2\na: 3\n", "line 3");
  ExpectRefused("x: {k: 1, k: 2}\n", "duplicate key 'k'");
  ExpectRefused("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n", "merge keys");
  ExpectRefused("? [a, b]\n: 1\n", "keys must be scalars");
  ExpectRefused("a: .inf\n", "infinity or NaN");
  ExpectRefused("a: .NaN\n", "infinity or NaN");
  ExpectRefused("a: 99999999999999999999\n", "out of range");
  ExpectRefused("a: 1\n---\nb: 2\n", "2 documents");
  ExpectRefused("", "no document");
  ExpectRefused("- a\n- b\n", "must be a mapping");
  ExpectRefused("a: [1, 2\n", "YAML policy: line");
  ExpectRefused("a: b: c\n", "YAML policy: line 1");
  ExpectRefused("a: *nowhere\n", "YAML policy");
  std::string deep = "a: ";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  ExpectRefused(deep + "\n", "nested more than 64");
}

TEST(PolicyYaml, PathDetection) {
  EXPECT_TRUE(IsYamlPath("p.yaml"));
  EXPECT_TRUE(IsYamlPath("dir/P.YML"));
  EXPECT_FALSE(IsYamlPath("p.json"));
  EXPECT_FALSE(IsYamlPath("yaml"));
}

}  // namespace
}  // namespace toani::policy
