#include "policy/policy.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/hash.h"
#include "policy/template.h"

namespace toani::policy {
namespace {

using nlohmann::json;

bool IsName(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// Placeholder names in a template string ("{{name}}").
void Placeholders(const std::string& text, std::vector<std::string>* out) {
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    size_t close = text.find("}}", pos + 2);
    if (close == std::string::npos) return;
    out->push_back(text.substr(pos + 2, close - pos - 2));
    pos = close + 2;
  }
}

void AddUnique(std::vector<std::string>* v, const std::vector<std::string>& add) {
  for (const auto& a : add) {
    if (std::find(v->begin(), v->end(), a) == v->end()) v->push_back(a);
  }
}

// Which parameters each position of a (validated) template uses.
void CollectTemplateParams(const json& t, ActionSpec* s) {
  std::vector<std::string> text, header, body;
  if (t.contains("url") && t["url"].is_string()) Placeholders(t["url"], &text);
  for (const char* k : {"query", "form"}) {
    if (t.contains(k) && t[k].is_object()) {
      for (const auto& v : *t.find(k)) {
        if (v.is_string()) Placeholders(v, &text);
      }
    }
  }
  if (t.contains("headers") && t["headers"].is_object()) {
    for (const auto& v : t["headers"]) {
      if (v.is_string()) Placeholders(v, &header);
    }
  }
  std::function<void(const json&)> walk = [&](const json& n) {
    if (n.is_string()) {
      const std::string& str = n.get_ref<const std::string&>();
      if (str.size() > 4 && str.rfind("{{", 0) == 0 && str.find("{{", 2) == std::string::npos &&
          str.compare(str.size() - 2, 2, "}}") == 0) {
        body.push_back(str.substr(2, str.size() - 4));  // typed: any JSON value
      } else {
        Placeholders(str, &text);
      }
    } else if (n.is_structured()) {
      for (const auto& c : n) walk(c);
    }
  };
  if (t.contains("body")) walk(t["body"]);
  AddUnique(&s->text_params, text);
  AddUnique(&s->text_params, header);
  AddUnique(&s->header_params, header);
  AddUnique(&s->template_params, text);
  AddUnique(&s->template_params, header);
  AddUnique(&s->template_params, body);
  // A webhook action's {{toani_callback_url}} is filled by the server, not the agent
  // (policy.md "Connectors"), so decisions do not ask the agent for it.
  if (s->connector == "webhook") {
    for (auto* list : {&s->text_params, &s->header_params, &s->template_params}) {
      std::erase(*list, std::string("toani_callback_url"));
    }
  }
}

// A name, "*", or a name prefix followed by "*" ("payments-*", "bank.*").
bool IsPattern(const std::string& s) {
  if (s == "*") return true;
  if (s.size() > 1 && s.back() == '*') return IsName(s.substr(0, s.size() - 1));
  return IsName(s);
}

bool PatternMatches(const std::string& pat, std::string_view v) {
  if (pat.back() == '*') return v.substr(0, pat.size() - 1) == std::string_view(pat).substr(0, pat.size() - 1);
  return v == pat;
}

Status OnlyKeys(const json& o, const std::string& where, std::initializer_list<const char*> keys) {
  for (auto it = o.begin(); it != o.end(); ++it) {
    bool known = false;
    for (const char* k : keys) known = known || it.key() == k;
    if (!known) return Status::InvalidArgument(where + "." + it.key() + ": unknown field");
  }
  return Status::Ok();
}

StatusOr<AgentSelector> ParseSelector(const json& a, const std::string& where) {
  if (!a.is_array() || a.empty())
    return Status::InvalidArgument(where + ": a non-empty array of agent names is required");
  AgentSelector sel;
  for (const auto& ag : a) {
    if (!ag.is_string() || !IsPattern(ag.get<std::string>()))
      return Status::InvalidArgument(where + ": bad agent name (names, \"prefix-*\" or \"*\")");
    sel.patterns.push_back(ag);
  }
  return sel;
}

StatusOr<int> ParseHhMm(const json& v, const std::string& where) {
  if (!v.is_string()) return Status::InvalidArgument(where + ": \"HH:MM\" expected");
  const std::string s = v;
  if (s.size() != 5 || s[2] != ':' || !std::isdigit(static_cast<unsigned char>(s[0])) ||
      !std::isdigit(static_cast<unsigned char>(s[1])) ||
      !std::isdigit(static_cast<unsigned char>(s[3])) ||
      !std::isdigit(static_cast<unsigned char>(s[4]))) {
    return Status::InvalidArgument(where + ": \"HH:MM\" expected");
  }
  int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0))
    return Status::InvalidArgument(where + ": not a time of day");
  return h * 60 + m;
}

StatusOr<TimeWindow> ParseWindow(const json& w, const std::string& where) {
  if (!w.is_object()) return Status::InvalidArgument(where + ": must be an object");
  TOANI_RETURN_IF_ERROR(OnlyKeys(w, where, {"days", "from", "to", "utc_offset"}));
  TimeWindow t;
  if (w.contains("days")) {
    static const char* kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    if (!w["days"].is_array() || w["days"].empty())
      return Status::InvalidArgument(where + ".days: a non-empty array of mon..sun");
    t.days = 0;
    for (const auto& d : w["days"]) {
      int found = -1;
      for (int i = 0; i < 7; ++i) {
        if (d.is_string() && d == kDays[i]) found = i;
      }
      if (found < 0) return Status::InvalidArgument(where + ".days: mon, tue, … sun");
      t.days = static_cast<uint8_t>(t.days | (1u << found));
    }
  }
  if (w.contains("from")) {
    TOANI_ASSIGN_OR_RETURN(t.from_minute, ParseHhMm(w["from"], where + ".from"));
  }
  if (w.contains("to")) {
    TOANI_ASSIGN_OR_RETURN(t.to_minute, ParseHhMm(w["to"], where + ".to"));
  }
  if (t.from_minute == t.to_minute)
    return Status::InvalidArgument(where + ": from and to must differ");
  if (w.contains("utc_offset")) {
    const json& o = w["utc_offset"];
    std::string s = o.is_string() ? o.get<std::string>() : "";
    if (s.size() != 6 || (s[0] != '+' && s[0] != '-'))
      return Status::InvalidArgument(where + ".utc_offset: \"+HH:MM\" or \"-HH:MM\"");
    TOANI_ASSIGN_OR_RETURN(int m, ParseHhMm(json(s.substr(1)), where + ".utc_offset"));
    if (m > 14 * 60) return Status::InvalidArgument(where + ".utc_offset: at most 14 hours");
    t.utc_offset_minutes = s[0] == '-' ? -m : m;
  }
  return t;
}

StatusOr<bool> PerAgent(const json& o, const std::string& where, const char* dflt) {
  const std::string per = o.value("per", dflt);
  if (per != "agent" && per != "action")
    return Status::InvalidArgument(where + ".per: \"agent\" or \"action\"");
  return per == "agent";
}

// Risk tier, approval, rate limits, budget and time windows of one action.
Status ParseActionRules(const std::string& where, const json& a, ActionSpec* s) {
  s->risk_tier = a.value("risk_tier", "low");
  static const std::pair<const char*, RiskTier> kTiers[] = {{"low", RiskTier::kLow},
                                                           {"medium", RiskTier::kMedium},
                                                           {"high", RiskTier::kHigh},
                                                           {"critical", RiskTier::kCritical}};
  bool tier_ok = false;
  for (const auto& [n, t] : kTiers) {
    if (s->risk_tier == n) {
      s->tier = t;
      tier_ok = true;
    }
  }
  if (!tier_ok) return Status::InvalidArgument(where + ".risk_tier: low, medium, high or critical");
  if (a.contains("approval")) {
    const json& ap = a["approval"];
    const std::string w = where + ".approval";
    if (!ap.is_object()) return Status::InvalidArgument(w + ": must be an object");
    TOANI_RETURN_IF_ERROR(OnlyKeys(ap, w, {"approvers", "ttl_seconds", "when", "deny_cooldown_seconds"}));
    if (!ap.contains("approvers") || !ap["approvers"].is_number_integer() ||
        ap["approvers"].get<int64_t>() < 0 || ap["approvers"].get<int64_t>() > 5) {
      return Status::InvalidArgument(w + ".approvers: an integer 0..5");
    }
    s->approval.approvers = ap["approvers"].get<int>();
    s->approval.ttl_seconds = ap.value("ttl_seconds", int64_t{900});
    if (s->approval.ttl_seconds < 60 || s->approval.ttl_seconds > 86400)
      return Status::InvalidArgument(w + ".ttl_seconds: 60..86400");
    s->approval.deny_cooldown_seconds = ap.value("deny_cooldown_seconds", int64_t{3600});
    if (s->approval.deny_cooldown_seconds < 0 || s->approval.deny_cooldown_seconds > 30 * 86400)
      return Status::InvalidArgument(w + ".deny_cooldown_seconds: 0..2592000");
    if (ap.contains("when")) {
      TOANI_ASSIGN_OR_RETURN(s->approval.when, Schema::Compile(ap["when"], w + ".when"));
    }
  }
  if (a.contains("rate_limits")) {
    if (!a["rate_limits"].is_array())
      return Status::InvalidArgument(where + ".rate_limits: must be an array");
    for (size_t i = 0; i < a["rate_limits"].size(); ++i) {
      const json& r = a["rate_limits"][i];
      const std::string w = where + ".rate_limits[" + std::to_string(i) + "]";
      if (!r.is_object()) return Status::InvalidArgument(w + ": must be an object");
      TOANI_RETURN_IF_ERROR(OnlyKeys(r, w, {"per", "max", "window_seconds"}));
      RateLimit rl;
      TOANI_ASSIGN_OR_RETURN(rl.per_agent, PerAgent(r, w, "agent"));
      if (!r.contains("max") || !r["max"].is_number_integer() || r["max"].get<int64_t>() < 1)
        return Status::InvalidArgument(w + ".max: an integer >= 1");
      rl.max = r["max"];
      rl.window_seconds = r.value("window_seconds", int64_t{60});
      if (rl.window_seconds < 1 || rl.window_seconds > 86400)
        return Status::InvalidArgument(w + ".window_seconds: 1..86400");
      s->rate_limits.push_back(rl);
    }
  }
  if (a.contains("budget")) {
    const json& b = a["budget"];
    const std::string w = where + ".budget";
    if (!b.is_object()) return Status::InvalidArgument(w + ": must be an object");
    TOANI_RETURN_IF_ERROR(OnlyKeys(b, w, {"param", "max_per_day", "per"}));
    Budget bu;
    if (!b.contains("param") || !b["param"].is_string())
      return Status::InvalidArgument(w + ".param: the numeric parameter to sum");
    bu.param = b["param"];
    if (!b.contains("max_per_day") || !b["max_per_day"].is_number() ||
        b["max_per_day"].get<double>() <= 0) {
      return Status::InvalidArgument(w + ".max_per_day: a number > 0");
    }
    bu.max_per_day = b["max_per_day"];
    TOANI_ASSIGN_OR_RETURN(bu.per_agent, PerAgent(b, w, "action"));
    // The parameter must always be there and be a number: a request without it
    // must not slip past the budget.
    bool required = false;
    for (const auto& r : s->params.value("required", json::array())) required = required || r == bu.param;
    const json prop = s->params.value("properties", json::object()).value(bu.param, json());
    const std::string type = prop.is_object() ? prop.value("type", "") : "";
    if (!required || (type != "number" && type != "integer") || !prop.contains("minimum") ||
        !prop["minimum"].is_number() || prop["minimum"].get<double>() < 0) {
      return Status::InvalidArgument(
          w + ".param: must be a required parameter of type number or integer with minimum >= 0");
    }
    s->budget = bu;
  }
  if (a.contains("time_windows")) {
    if (!a["time_windows"].is_array() || a["time_windows"].empty())
      return Status::InvalidArgument(where + ".time_windows: a non-empty array");
    for (size_t i = 0; i < a["time_windows"].size(); ++i) {
      TOANI_ASSIGN_OR_RETURN(TimeWindow t, ParseWindow(a["time_windows"][i],
                                                        where + ".time_windows[" + std::to_string(i) + "]"));
      s->time_windows.push_back(t);
    }
  }
  return Status::Ok();
}

StatusOr<ActionSpec> ParseAction(const std::string& name, const json& a) {
  const std::string where = "actions." + name;
  if (!IsName(name))
    return Status::InvalidArgument(where + ": action names are [A-Za-z0-9_.-]{1,128}");
  if (!a.is_object()) return Status::InvalidArgument(where + ": must be an object");
  ActionSpec s;
  s.name = name;
  if (!a.contains("agents") || !a["agents"].is_array() || a["agents"].empty()) {
    return Status::InvalidArgument(where + ".agents: a non-empty array of agent names is required");
  }
  TOANI_ASSIGN_OR_RETURN(s.agent_selector, ParseSelector(a["agents"], where + ".agents"));
  s.agents = s.agent_selector.patterns;
  // Connector, injection, form/oauth/browser/webhook settings, response rules.
  TOANI_RETURN_IF_ERROR(ParseConnectorSpec(a, where, s.connector_spec));
  s.connector = s.connector_spec.kind;
  s.inject = {s.connector_spec.inject.kind, s.connector_spec.inject.name,
              s.connector_spec.inject.prefix};
  if (!a.contains("credential") || !a["credential"].is_string()) {
    return Status::InvalidArgument(where + ".credential: a credential id is required");
  }
  s.credential_id = a["credential"];
  if (s.connector != "browser") {
    if (!a.contains("request")) return Status::InvalidArgument(where + ".request is required");
    s.request = a["request"];
    Status t = ValidateTemplate(s.request);
    if (!t.ok()) return Status::InvalidArgument(where + "." + t.message());
    CollectTemplateParams(s.request, &s);
  }
  s.params = a.value("params", json{{"type", "object"}, {"additionalProperties", false}});
  if (!s.params.is_object())
    return Status::InvalidArgument(where + ".params must be a schema object");
  TOANI_ASSIGN_OR_RETURN(s.schema, Schema::Compile(s.params, where + ".params"));
  if (!a.contains("egress") || !a["egress"].is_array() || a["egress"].empty()) {
    return Status::InvalidArgument(where + ".egress: a non-empty allow-list is required");
  }
  for (const auto& e : a["egress"]) {
    if (!e.is_object() || !e.contains("host") || !e["host"].is_string()) {
      return Status::InvalidArgument(where + ".egress: entries are {\"host\":…,\"port\":…}");
    }
    int64_t port = e.value("port", 443);
    if (port < 1 || port > 65535) return Status::InvalidArgument(where + ".egress: bad port");
    s.egress.push_back({e["host"], static_cast<uint16_t>(port)});
  }
  TOANI_RETURN_IF_ERROR(ParseActionRules(where, a, &s));
  s.token_ttl_seconds = a.value("token_ttl_seconds", int64_t{300});
  if (s.token_ttl_seconds < 1 || s.token_ttl_seconds > 3600) {
    return Status::InvalidArgument(where + ".token_ttl_seconds must be 1..3600");
  }
  const size_t max_bytes = s.connector_spec.response.max_bytes;  // checked in connector_spec
  s.max_response_bytes = max_bytes;
  return s;
}

StatusOr<DenyRule> ParseDenyRule(const json& r, const std::string& where) {
  if (!r.is_object()) return Status::InvalidArgument(where + ": must be an object");
  TOANI_RETURN_IF_ERROR(OnlyKeys(r, where, {"id", "actions", "agents", "when", "reason"}));
  DenyRule d;
  if (!r.contains("id") || !r["id"].is_string() || !IsName(r["id"].get<std::string>()))
    return Status::InvalidArgument(where + ".id: required, [A-Za-z0-9_.-]{1,128}");
  d.id = r["id"];
  if (!r.contains("actions") || !r["actions"].is_array() || r["actions"].empty())
    return Status::InvalidArgument(where + ".actions: a non-empty array is required");
  for (const auto& a : r["actions"]) {
    if (!a.is_string() || !IsPattern(a.get<std::string>()))
      return Status::InvalidArgument(where + ".actions: names, \"prefix.*\" or \"*\"");
    d.actions.push_back(a);
  }
  TOANI_ASSIGN_OR_RETURN(d.agents,
                         ParseSelector(r.value("agents", json::array({"*"})), where + ".agents"));
  if (r.contains("when")) {
    TOANI_ASSIGN_OR_RETURN(d.when, Schema::Compile(r["when"], where + ".when"));
  }
  if (r.contains("reason") && !r["reason"].is_string())
    return Status::InvalidArgument(where + ".reason must be a string");
  d.reason = r.value("reason", "");
  return d;
}

StatusOr<IdentityIssuer> ParseIssuer(const json& r, const std::string& where) {
  if (!r.is_object() || !r.contains("issuer") || !r["issuer"].is_string() ||
      !r.contains("public_key") || !r["public_key"].is_string()) {
    return Status::InvalidArgument(where + ": {\"issuer\": …, \"public_key\": \"k4.public.…\"}");
  }
  IdentityIssuer i;
  i.issuer = r["issuer"];
  if (i.issuer.empty() || i.issuer.size() > 256)
    return Status::InvalidArgument(where + ".issuer: 1..256 characters");
  const std::string pk = r["public_key"];
  constexpr std::string_view kPrefix = "k4.public.";
  auto raw = pk.rfind(kPrefix, 0) == 0 ? Base64UrlDecodeStrict(pk.substr(kPrefix.size()))
                                      : StatusOr<Bytes>(Status::InvalidArgument("prefix"));
  if (!raw.ok() || raw->size() != 32)
    return Status::InvalidArgument(where + ".public_key: a PASERK k4.public key is expected");
  std::copy(raw->begin(), raw->end(), i.public_key.begin());
  return i;
}

}  // namespace

StatusOr<Policy> ParsePolicy(const json& doc) {
  if (!doc.is_object()) return Status::InvalidArgument("policy: must be a JSON object");
  Policy p;
  if (!doc.contains("policy_id") || !doc["policy_id"].is_string() ||
      !IsName(doc["policy_id"].get<std::string>())) {
    return Status::InvalidArgument("policy_id: required, [A-Za-z0-9_.-]{1,128}");
  }
  p.policy_id = doc["policy_id"];
  if (!doc.contains("version") || !doc["version"].is_number_integer() ||
      doc["version"].get<int64_t>() < 1) {
    return Status::InvalidArgument("version: required, an integer >= 1");
  }
  p.version = doc["version"];
  if (!doc.contains("actions") || !doc["actions"].is_object() || doc["actions"].empty()) {
    return Status::InvalidArgument("actions: required, a non-empty object");
  }
  for (auto it = doc["actions"].begin(); it != doc["actions"].end(); ++it) {
    TOANI_ASSIGN_OR_RETURN(ActionSpec a, ParseAction(it.key(), it.value()));
    p.actions.emplace(it.key(), std::move(a));
  }
  if (doc.contains("tenant")) {
    if (!doc["tenant"].is_string() || !IsName(doc["tenant"].get<std::string>()))
      return Status::InvalidArgument("tenant: [A-Za-z0-9_.-]{1,128}");
    p.tenant = doc["tenant"];
  }
  if (doc.contains("deny")) {
    if (!doc["deny"].is_array()) return Status::InvalidArgument("deny: must be an array of rules");
    for (size_t i = 0; i < doc["deny"].size(); ++i) {
      TOANI_ASSIGN_OR_RETURN(DenyRule r,
                             ParseDenyRule(doc["deny"][i], "deny[" + std::to_string(i) + "]"));
      p.deny.push_back(std::move(r));
    }
  }
  if (doc.contains("identity_issuers")) {
    if (!doc["identity_issuers"].is_array())
      return Status::InvalidArgument("identity_issuers: must be an array");
    for (size_t i = 0; i < doc["identity_issuers"].size(); ++i) {
      TOANI_ASSIGN_OR_RETURN(
          IdentityIssuer is,
          ParseIssuer(doc["identity_issuers"][i], "identity_issuers[" + std::to_string(i) + "]"));
      p.identity_issuers.push_back(std::move(is));
    }
  }
  return p;
}

bool AgentSelector::Matches(std::string_view agent) const {
  for (const auto& p : patterns) {
    if (PatternMatches(p, agent)) return true;
  }
  return false;
}

bool DenyRule::MatchesAction(std::string_view action) const {
  for (const auto& p : actions) {
    if (PatternMatches(p, action)) return true;
  }
  return false;
}

const char* RiskTierName(RiskTier t) {
  switch (t) {
    case RiskTier::kLow:
      return "low";
    case RiskTier::kMedium:
      return "medium";
    case RiskTier::kHigh:
      return "high";
    case RiskTier::kCritical:
      return "critical";
  }
  return "low";
}

int TierApprovers(RiskTier t) {
  return t == RiskTier::kCritical ? 2 : t == RiskTier::kHigh ? 1 : 0;
}

StatusOr<Sensitivity> ParseSensitivity(std::string_view s) {
  if (s == "standard") return Sensitivity::kStandard;
  if (s == "privileged") return Sensitivity::kPrivileged;
  if (s == "personal") return Sensitivity::kPersonal;
  if (s == "kyc_gated") return Sensitivity::kKycGated;
  return Status::InvalidArgument("sensitivity must be standard, privileged, personal or kyc_gated");
}

const char* SensitivityName(Sensitivity s) {
  switch (s) {
    case Sensitivity::kStandard:
      return "standard";
    case Sensitivity::kPrivileged:
      return "privileged";
    case Sensitivity::kPersonal:
      return "personal";
    case Sensitivity::kKycGated:
      return "kyc_gated";
  }
  return "standard";
}

Status ValidateParams(const json& schema, const json& params) {
  if (!params.is_object()) return Status::InvalidArgument("params: must be a JSON object");
  TOANI_ASSIGN_OR_RETURN(auto compiled, Schema::Compile(schema, "params"));
  return compiled->Validate(params, "params");
}

Decision Evaluate(const std::vector<Policy>& policies, const std::string& agent,
                  const std::string& action, const json& params) {
  Decision d;
  d.reason = "no policy allows action '" + action + "' (deny by default)";
  if (!params.is_object()) {
    d.reason = "params: must be a JSON object";
    return d;
  }
  for (const Policy& p : policies) {
    for (const DenyRule& r : p.deny) {
      if (r.MatchesAction(action) && r.agents.Matches(agent) &&
          (r.when == nullptr || r.when->Matches(params))) {
        d.reason = "denied by rule '" + r.id + "' of " + p.policy_id + " v" +
                   std::to_string(p.version) + (r.reason.empty() ? "" : ": " + r.reason);
        return d;
      }
    }
  }
  for (const Policy& p : policies) {
    auto it = p.actions.find(action);
    if (it == p.actions.end()) continue;
    const ActionSpec& a = it->second;
    if (!a.agent_selector.Matches(agent)) {
      d.reason = "agent '" + agent + "' is not named by " + p.policy_id + " v" +
                 std::to_string(p.version) + " for action '" + action + "'";
      continue;
    }
    Status v = a.schema->Validate(params, "params");
    if (!v.ok()) {
      d.reason = v.message();
      return d;
    }
    d.allowed = true;
    d.reason =
        "allowed by " + p.policy_id + " v" + std::to_string(p.version) + " action '" + action + "'";
    d.policy = &p;
    d.action = &a;
    return d;
  }
  return d;
}

std::string ParamsHash(const json& params) {
  return "sha256:" + crypto::Sha256Hex(CanonicalizeJson(params));
}

}  // namespace toani::policy
