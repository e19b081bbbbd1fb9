// Policy model and evaluation (DESIGN.md §5; the language is docs/policy.md, its
// JSON Schema docs/policy.schema.json). Policies are parsed once into this model —
// parameter schemas and RE2 patterns compiled — so a decision never parses.
// Evaluation is deny by default (policy/decide.h has the full decision with limits,
// approvals and identity proofs; Evaluate below is the static part).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "policy/connector_spec.h"
#include "policy/schema.h"

namespace toani::policy {

struct EgressRule {
  std::string host;  // exact, or "*.suffix"
  uint16_t port = 443;
};

struct Injection {
  std::string kind = "header";  // skeleton: header only
  std::string name = "Authorization";
  std::string prefix;  // e.g. "Bearer "
};

// "*" (every agent), "name", or "prefix-*".
struct AgentSelector {
  std::vector<std::string> patterns;
  bool Matches(std::string_view agent) const;
};

enum class RiskTier { kLow, kMedium, kHigh, kCritical };
const char* RiskTierName(RiskTier t);
// Approvers a tier asks for at least: high 1, critical 2, others 0.
int TierApprovers(RiskTier t);

// Set on the credential by credential admins (DESIGN.md §5).
enum class Sensitivity { kStandard, kPrivileged, kPersonal, kKycGated };
StatusOr<Sensitivity> ParseSensitivity(std::string_view s);
const char* SensitivityName(Sensitivity s);

struct ApprovalRule {
  int approvers = 0;  // distinct humans; 0 = none unless the tier or sensitivity asks
  int64_t ttl_seconds = 900;                  // how long approvers have (60..86400)
  std::shared_ptr<const Schema> when;         // only when params match (null = always)
  int64_t deny_cooldown_seconds = 3600;       // an identical denied request is denied again
};

struct RateLimit {
  bool per_agent = true;  // "agent": one counter per agent; "action": one for all agents
  int64_t max = 0;
  int64_t window_seconds = 60;
};

struct Budget {
  std::string param;  // a numeric parameter (required by the schema)
  double max_per_day = 0;
  bool per_agent = false;
};

struct TimeWindow {
  uint8_t days = 0x7f;  // bit 0 = Monday … bit 6 = Sunday
  int from_minute = 0;  // [from, to) minutes of the local day; from > to spans midnight
  int to_minute = 24 * 60;
  int utc_offset_minutes = 0;
};

struct DenyRule {
  std::string id;
  std::vector<std::string> actions;  // names or "prefix.*" or "*"
  AgentSelector agents;
  std::shared_ptr<const Schema> when;  // null = always
  std::string reason;
  bool MatchesAction(std::string_view action) const;
};

struct IdentityIssuer {
  std::string issuer;                   // the proof's "iss"
  std::array<uint8_t, 32> public_key{};  // Ed25519 (PASERK k4.public in the document)
};

struct ActionSpec {
  std::string name;
  std::vector<std::string> agents;  // as written (selectors)
  AgentSelector agent_selector;
  std::string connector;         // http | oauth | form | browser | webhook
  ConnectorSpec connector_spec;  // connector_spec.h: inject, form, oauth, browser, response
  std::string credential_id;
  Injection inject;
  nlohmann::json request;  // template: method, url, query{}, headers{}, body (not for browser)
  nlohmann::json params;   // parameter schema as written
  std::shared_ptr<const Schema> schema;  // compiled
  std::vector<EgressRule> egress;
  std::string risk_tier = "low";
  RiskTier tier = RiskTier::kLow;
  ApprovalRule approval;
  std::vector<RateLimit> rate_limits;
  std::optional<Budget> budget;
  std::vector<TimeWindow> time_windows;  // empty = any time
  int64_t token_ttl_seconds = 300;
  size_t max_response_bytes = 1 << 20;
  // Placeholders of the request template, found when parsing (so a decision need not
  // render): every one must be present; text ones must be a string, number or boolean;
  // header ones must hold no control character.
  std::vector<std::string> template_params, text_params, header_params;
};

struct Policy {
  std::string policy_id;
  int64_t version = 0;
  std::string tenant;  // "" = not bound in the document
  std::map<std::string, ActionSpec> actions;
  std::vector<DenyRule> deny;
  std::vector<IdentityIssuer> identity_issuers;
};

// Parses and validates a policy document. Every error names the offending field.
StatusOr<Policy> ParsePolicy(const nlohmann::json& doc);

struct Decision {
  bool allowed = false;
  std::string reason;  // why: the rule that allowed, or what denied
  const Policy* policy = nullptr;
  const ActionSpec* action = nullptr;
};

// The static part of a decision (deny rules, action, agent, parameters); no limits,
// time windows or approvals. Deny by default. `policies` are the tenant's current versions.
Decision Evaluate(const std::vector<Policy>& policies, const std::string& agent,
                  const std::string& action, const nlohmann::json& params);

// Checks params against a schema; returns InvalidArgument naming the first violation.
Status ValidateParams(const nlohmann::json& schema, const nlohmann::json& params);

// "sha256:" + hex(SHA-256(RFC 8785 canonical JSON of params)).
std::string ParamsHash(const nlohmann::json& params);

}  // namespace toani::policy
