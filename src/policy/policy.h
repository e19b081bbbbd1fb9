// Policy model and evaluation (walking-skeleton subset of DESIGN.md §5; the full
// language, signatures and approvals are issue 5). docs/policy.md describes the
// document. Evaluation is deny by default: an action is allowed only if a policy
// names it, names the calling agent, and the parameters satisfy its schema.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "policy/connector_spec.h"

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

struct ActionSpec {
  std::string name;
  std::vector<std::string> agents;  // agent names (the last SPIFFE path segment)
  std::string connector;            // http | oauth | form | browser | webhook
  ConnectorSpec connector_spec;     // connector_spec.h: inject, form, oauth, browser, response
  std::string credential_id;
  Injection inject;
  nlohmann::json request;  // template: method, url, query{}, headers{}, body (not for browser)
  nlohmann::json params;   // parameter schema (subset of JSON Schema)
  std::vector<EgressRule> egress;
  std::string risk_tier = "low";
  int64_t token_ttl_seconds = 300;
  size_t max_response_bytes = 1 << 20;
};

struct Policy {
  std::string policy_id;
  int64_t version = 0;
  std::map<std::string, ActionSpec> actions;
};

// Parses and validates a policy document. Every error names the offending field.
StatusOr<Policy> ParsePolicy(const nlohmann::json& doc);

struct Decision {
  bool allowed = false;
  std::string reason;  // why: the rule that allowed, or what denied
  const Policy* policy = nullptr;
  const ActionSpec* action = nullptr;
};

// Deny by default. `policies` are the tenant's current versions.
Decision Evaluate(const std::vector<Policy>& policies, const std::string& agent,
                  const std::string& action, const nlohmann::json& params);

// Checks params against a schema; returns InvalidArgument naming the first violation.
Status ValidateParams(const nlohmann::json& schema, const nlohmann::json& params);

// "sha256:" + hex(SHA-256(RFC 8785 canonical JSON of params)).
std::string ParamsHash(const nlohmann::json& params);

}  // namespace toani::policy
