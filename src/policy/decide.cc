#include "policy/decide.h"

#include <algorithm>
#include <cmath>

#include "common/jcs.h"
#include "crypto/paseto_public.h"
#include "policy/template.h"

namespace toani::policy {
namespace {

using nlohmann::json;

std::string Where(const Policy& p) { return p.policy_id + " v" + std::to_string(p.version); }

void Explain(const DecisionEnv& env, FullDecision& d, const char* check, bool pass,
             const std::string& detail) {
  if (!env.dry_run) return;
  d.explain.push_back({{"check", check}, {"result", pass ? "pass" : "fail"}, {"detail", detail}});
}

FullDecision& Deny(const DecisionEnv& env, FullDecision& d, const char* rule, std::string reason) {
  d.outcome = Outcome::kDeny;
  d.rule = rule;
  d.reason = std::move(reason);
  Explain(env, d, rule, false, d.reason);
  return d;
}

bool InWindow(const TimeWindow& w, SysTime now) {
  const int64_t local = UnixSeconds(now) + int64_t{w.utc_offset_minutes} * 60;
  int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  const int64_t secs = local - days * 86400;
  const int weekday = static_cast<int>(((days % 7) + 7 + 3) % 7);  // 1970-01-01: Thursday
  const int minute = static_cast<int>(secs / 60);
  if ((w.days & (1u << weekday)) == 0) return false;
  if (w.from_minute < w.to_minute) return minute >= w.from_minute && minute < w.to_minute;
  return minute >= w.from_minute || minute < w.to_minute;  // spans midnight
}

// A valid identity proof from one of the policy's issuers, naming the user.
StatusOr<std::string> VerifyIdentityProof(const Policy& p, const DecisionRequest& req) {
  if (req.identity_proof.empty())
    return Status::PermissionDenied("the credential is KYC-gated: an identity proof is required");
  if (p.identity_issuers.empty())
    return Status::PermissionDenied("the credential is KYC-gated but " + Where(p) +
                                    " names no identity issuer");
  for (const IdentityIssuer& is : p.identity_issuers) {
    auto msg = crypto::PasetoV4PublicVerify(is.public_key, req.identity_proof, "");
    if (!msg.ok()) continue;
    json c = json::parse(msg->payload, nullptr, false);
    if (!c.is_object()) return Status::PermissionDenied("identity proof: payload is not an object");
    if (c.value("iss", "") != is.issuer)
      return Status::PermissionDenied("identity proof: iss is not '" + is.issuer + "'");
    if (c.value("aud", "") != "toani:" + req.tenant)
      return Status::PermissionDenied("identity proof: aud must be 'toani:" + req.tenant + "'");
    const std::string sub = c.contains("sub") && c["sub"].is_string() ? c["sub"].get<std::string>() : "";
    if (sub.empty()) return Status::PermissionDenied("identity proof: no sub (user)");
    auto exp = ParseRfc3339(c.contains("exp") && c["exp"].is_string() ? c["exp"].get<std::string>() : "");
    if (!exp.ok()) return Status::PermissionDenied("identity proof: exp missing or malformed");
    if (*exp <= req.now) return Status::PermissionDenied("identity proof has expired");
    if (!req.user.empty() && req.user != sub)
      return Status::PermissionDenied("identity proof names user '" + sub + "', not '" + req.user + "'");
    return sub;
  }
  return Status::PermissionDenied("identity proof is not signed by an issuer of " + Where(p));
}

}  // namespace

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kAllow:
      return "allow";
    case Outcome::kApprovalRequired:
      return "approval_required";
    case Outcome::kDeny:
      return "deny";
  }
  return "deny";
}

std::string RateLimitKey(const std::string& tenant, const Policy& p, const ActionSpec& a,
                         const RateLimit& r, const std::string& agent) {
  return "rate|" + tenant + "|" + p.policy_id + "|" + a.name + "|" +
         (r.per_agent ? "agent:" + agent : std::string("action")) + "|" +
         std::to_string(r.window_seconds);
}

std::string BudgetKey(const std::string& tenant, const Policy& p, const ActionSpec& a,
                      const std::string& agent) {
  return "budget|" + tenant + "|" + p.policy_id + "|" + a.name + "|" + a.budget->param + "|" +
         (a.budget->per_agent ? "agent:" + agent : std::string("action"));
}

FullDecision Decide(const std::vector<Policy>& policies, const DecisionRequest& req,
                    const DecisionEnv& env) {
  FullDecision d;
  if (env.dry_run) d.explain = json::array();
  const json& params = *req.params;
  if (!params.is_object()) return Deny(env, d, "params", "params: must be a JSON object");
  // 1. Explicit deny wins over every allow, in every current policy.
  for (const Policy& p : policies) {
    for (const DenyRule& r : p.deny) {
      if (r.MatchesAction(req.action) && r.agents.Matches(req.agent) &&
          (r.when == nullptr || r.when->Matches(params))) {
        d.policy = &p;
        return Deny(env, d, "deny_rule",
                    "denied by rule '" + r.id + "' of " + Where(p) +
                        (r.reason.empty() ? "" : ": " + r.reason));
      }
    }
  }
  Explain(env, d, "deny_rule", true, "no deny rule matches");
  // 2. The first policy (by id) whose action names this agent decides.
  const Policy* pol = nullptr;
  const ActionSpec* act = nullptr;
  std::string agent_miss;
  for (const Policy& p : policies) {
    auto it = p.actions.find(req.action);
    if (it == p.actions.end()) continue;
    d.known_action = true;
    if (!it->second.agent_selector.Matches(req.agent)) {
      if (agent_miss.empty()) {
        agent_miss = "agent '" + req.agent + "' is not named by " + Where(p) + " for action '" +
                     req.action + "'";
      }
      continue;
    }
    pol = &p;
    act = &it->second;
    break;
  }
  if (act == nullptr) {
    if (!agent_miss.empty()) return Deny(env, d, "agent", agent_miss);
    return Deny(env, d, "default_deny",
                "no policy allows action '" + req.action + "' (deny by default)");
  }
  d.policy = pol;
  d.action = act;
  Explain(env, d, "agent", true, "agent '" + req.agent + "' is named by " + Where(*pol));
  // 3. Parameters.
  if (Status v = act->schema->Validate(params, "params"); !v.ok())
    return Deny(env, d, "params", v.message());
  // A value the request template would refuse (a control character for a header) is
  // refused now: a token for it could never run.
  for (const std::string& n : act->template_params) {
    if (!params.contains(n))
      return Deny(env, d, "params", "params: template refers to missing parameter '" + n + "'");
  }
  for (const std::string& n : act->text_params) {
    const json& v = params[n];
    if (!(v.is_string() || v.is_number() || v.is_boolean()))
      return Deny(env, d, "params",
                  "params: parameter '" + n + "' must be a string, number or boolean here");
  }
  for (const std::string& n : act->header_params) {
    const json& v = params[n];
    if (!v.is_string()) continue;
    for (unsigned char ch : v.get_ref<const std::string&>()) {
      if (ch < 0x20 || ch == 0x7f)
        return Deny(env, d, "params",
                    "params: parameter '" + n +
                        "' contains a control character (CR/LF/NUL) in a header");
    }
  }
  Explain(env, d, "params", true, "parameters satisfy the schema");
  // 4. Time windows.
  if (!act->time_windows.empty()) {
    bool in = false;
    for (const auto& w : act->time_windows) in = in || InWindow(w, req.now);
    if (!in)
      return Deny(env, d, "time_window",
                  "outside the time windows of action '" + act->name + "' in " + Where(*pol));
    Explain(env, d, "time_window", true, "inside a time window");
  }
  // 5. Credential sensitivity: KYC-gated needs a valid identity proof.
  const Sensitivity sens = env.sensitivity ? env.sensitivity(act->credential_id) : Sensitivity::kStandard;
  d.user = req.user;
  if (sens == Sensitivity::kKycGated) {
    auto user = VerifyIdentityProof(*pol, req);
    if (!user.ok()) return Deny(env, d, "identity_proof", user.status().message());
    d.user = *user;
    Explain(env, d, "identity_proof", true, "identity proof names user '" + *user + "'");
  }
  // 6. Rate limits and budget (charged unless simulating; a deny above charges nothing).
  if ((!act->rate_limits.empty() || act->budget) && env.limits == nullptr)
    return Deny(env, d, "limits_unavailable", "rate limits cannot be checked (fail closed)");
  const int64_t now_s = UnixSeconds(req.now);
  for (const RateLimit& r : act->rate_limits) {
    const std::string key = RateLimitKey(req.tenant, *pol, *act, r, req.agent);
    const int64_t start = now_s - now_s % r.window_seconds;
    const std::string what = "rate limit of " + Where(*pol) + " action '" + act->name + "': " +
                             std::to_string(r.max) + " per " + std::to_string(r.window_seconds) +
                             " s per " + (r.per_agent ? "agent" : "action");
    bool admitted;
    if (env.dry_run) {
      auto cur = env.limits->Current(key, start);
      if (!cur.ok()) return Deny(env, d, "limits_unavailable", "rate limit store: " + cur.status().message());
      admitted = *cur + 1 <= static_cast<double>(r.max);
    } else {
      auto res = env.limits->TryAdd(key, start, r.window_seconds, 1, static_cast<double>(r.max));
      if (!res.ok()) return Deny(env, d, "limits_unavailable", "rate limit store: " + res.status().message());
      admitted = res->admitted;
    }
    if (!admitted) return Deny(env, d, "rate_limit", what + " exceeded");
    Explain(env, d, "rate_limit", true, what);
  }
  if (act->budget) {
    const Budget& b = *act->budget;
    const double amount = params.at(b.param).get<double>();  // required number (parse check)
    const std::string key = BudgetKey(req.tenant, *pol, *act, req.agent);
    const int64_t start = now_s - now_s % 86400;
    const std::string what = "budget of " + Where(*pol) + " action '" + act->name + "': " +
                             b.param + " sums to at most " + FormatJsonNumber(b.max_per_day) + " per day";
    bool admitted;
    if (env.dry_run) {
      auto cur = env.limits->Current(key, start);
      if (!cur.ok()) return Deny(env, d, "limits_unavailable", "budget store: " + cur.status().message());
      admitted = *cur + amount <= b.max_per_day;
    } else {
      auto res = env.limits->TryAdd(key, start, 86400, amount, b.max_per_day);
      if (!res.ok()) return Deny(env, d, "limits_unavailable", "budget store: " + res.status().message());
      admitted = res->admitted;
    }
    if (!admitted) return Deny(env, d, "budget", what + " exceeded");
    Explain(env, d, "budget", true, what);
  }
  // 7. Human approval: the most any source asks for.
  int need = 0;
  std::string why;
  if (act->approval.approvers > 0 &&
      (act->approval.when == nullptr || act->approval.when->Matches(params))) {
    need = act->approval.approvers;
    why = "the action's approval rule";
  }
  if (TierApprovers(act->tier) > need) {
    need = TierApprovers(act->tier);
    why = std::string("risk tier ") + RiskTierName(act->tier);
  }
  const int sens_need = sens == Sensitivity::kPrivileged ? 2 : sens == Sensitivity::kPersonal ? 1 : 0;
  if (sens_need > need) {
    need = sens_need;
    why = std::string("credential is ") + SensitivityName(sens);
  }
  if (need > 0) {
    d.outcome = Outcome::kApprovalRequired;
    d.rule = "approval";
    d.approvers_required = need;
    d.reason = "approval by " + std::to_string(need) + " distinct approver" + (need > 1 ? "s" : "") +
               " required (" + why + ") by " + Where(*pol) + " action '" + act->name + "'";
    Explain(env, d, "approval", true, d.reason);
    return d;
  }
  d.outcome = Outcome::kAllow;
  d.rule = "allow";
  d.reason = "allowed by " + Where(*pol) + " action '" + act->name + "'";
  Explain(env, d, "allow", true, d.reason);
  return d;
}

}  // namespace toani::policy
