// The full policy decision (docs/policy.md "How a decision is made"): explicit deny
// rules, the action and its agent selector, the parameter schema, time windows,
// identity proofs for KYC-gated credentials, rate limits, budgets and the approval
// requirement from the action, its risk tier and its credential's sensitivity.
// Deny by default; every outcome names the rule that produced it.
//
// Decide is thread-safe (policies are immutable; the LimitCounter is thread-safe).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/time.h"
#include "policy/policy.h"
#include "store/store.h"

namespace toani::policy {

enum class Outcome { kDeny, kAllow, kApprovalRequired };
const char* OutcomeName(Outcome o);  // "deny" | "allow" | "approval_required"

struct DecisionRequest {
  std::string tenant;
  std::string agent;
  std::string action;
  const nlohmann::json* params = nullptr;
  SysTime now{};
  std::string user;            // the human the agent acts for ("" = none)
  std::string identity_proof;  // PASETO v4.public identity statement ("" = none)
};

struct DecisionEnv {
  // The sensitivity of a credential id (null: every credential is standard).
  std::function<Sensitivity(const std::string&)> sensitivity;
  // Counters for rate limits and budgets. Null means they cannot be checked, and an
  // action that has any is denied (fail closed).
  store::LimitCounter* limits = nullptr;
  // simulate: read counters without charging them, and build `explain`.
  bool dry_run = false;
};

struct FullDecision {
  Outcome outcome = Outcome::kDeny;
  // Machine-readable rule: "deny_rule", "default_deny", "agent", "params",
  // "time_window", "identity_proof", "rate_limit", "budget", "limits_unavailable",
  // "approval", "allow".
  std::string rule = "default_deny";
  std::string reason;  // human-readable, names the policy, version and rule
  const Policy* policy = nullptr;
  const ActionSpec* action = nullptr;
  bool known_action = false;   // some policy defines the action
  int approvers_required = 0;  // when outcome is kApprovalRequired
  std::string user;            // the verified user ("" = none)
  nlohmann::json explain;      // dry_run only: each check with its result
  bool allowed() const { return outcome == Outcome::kAllow; }
};

FullDecision Decide(const std::vector<Policy>& policies, const DecisionRequest& req,
                    const DecisionEnv& env);

// Counter keys (docs/policy.md): exposed for tests.
std::string RateLimitKey(const std::string& tenant, const Policy& p, const ActionSpec& a,
                         const RateLimit& r, const std::string& agent);
std::string BudgetKey(const std::string& tenant, const Policy& p, const ActionSpec& a,
                      const std::string& agent);

}  // namespace toani::policy
