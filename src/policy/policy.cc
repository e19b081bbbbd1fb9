#include "policy/policy.h"

#include <re2/re2.h>

#include <cmath>

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
  for (const auto& ag : a["agents"]) {
    if (!ag.is_string() || !IsName(ag.get<std::string>()))
      return Status::InvalidArgument(where + ".agents: bad agent name");
    s.agents.push_back(ag);
  }
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
  }
  s.params = a.value("params", json{{"type", "object"}, {"additionalProperties", false}});
  if (!s.params.is_object())
    return Status::InvalidArgument(where + ".params must be a schema object");
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
  s.risk_tier = a.value("risk_tier", "low");
  s.token_ttl_seconds = a.value("token_ttl_seconds", int64_t{300});
  if (s.token_ttl_seconds < 1 || s.token_ttl_seconds > 3600) {
    return Status::InvalidArgument(where + ".token_ttl_seconds must be 1..3600");
  }
  const size_t max_bytes = s.connector_spec.response.max_bytes;  // checked in connector_spec
  s.max_response_bytes = max_bytes;
  return s;
}

bool TypeMatches(const std::string& type, const json& v) {
  if (type == "string") return v.is_string();
  if (type == "integer")
    return v.is_number_integer() ||
           (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "null") return v.is_null();
  return false;
}

Status Validate(const json& schema, const json& v, const std::string& path) {
  if (!schema.is_object()) return Status::InvalidArgument(path + ": schema must be an object");
  auto fail = [&](const std::string& what) { return Status::InvalidArgument(path + ": " + what); };
  if (schema.contains("type") && !TypeMatches(schema["type"].get<std::string>(), v)) {
    return fail("must be of type " + schema["type"].get<std::string>());
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) return fail("is not one of the allowed values");
  }
  if (schema.contains("const") && schema["const"] != v) return fail("must equal the constant");
  if (v.is_number()) {
    double d = v.get<double>();
    if (schema.contains("minimum") && d < schema["minimum"].get<double>())
      return fail("is below minimum");
    if (schema.contains("maximum") && d > schema["maximum"].get<double>())
      return fail("is above maximum");
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (schema.contains("minLength") && s.size() < schema["minLength"].get<size_t>())
      return fail("is too short");
    if (schema.contains("maxLength") && s.size() > schema["maxLength"].get<size_t>())
      return fail("is too long");
    if (schema.contains("pattern")) {
      RE2 re(schema["pattern"].get<std::string>(), RE2::Quiet);
      if (!re.ok()) return fail("schema pattern is not valid RE2");
      if (!RE2::PartialMatch(s, re)) return fail("does not match the pattern");
    }
  }
  if (v.is_object()) {
    if (schema.contains("required")) {
      for (const auto& r : schema["required"]) {
        if (!v.contains(r.get<std::string>()))
          return fail("'" + r.get<std::string>() + "' is required");
      }
    }
    const json props = schema.value("properties", json::object());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        TOANI_RETURN_IF_ERROR(Validate(props[it.key()], it.value(), path + "." + it.key()));
      } else if (!schema.value("additionalProperties", true)) {
        return fail("'" + it.key() + "' is not an allowed parameter");
      }
    }
  }
  if (v.is_array() && schema.contains("items")) {
    if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<size_t>())
      return fail("has too many items");
    for (size_t i = 0; i < v.size(); ++i) {
      TOANI_RETURN_IF_ERROR(Validate(schema["items"], v[i], path + "[" + std::to_string(i) + "]"));
    }
  }
  return Status::Ok();
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
  return p;
}

Status ValidateParams(const json& schema, const json& params) {
  if (!params.is_object()) return Status::InvalidArgument("params: must be a JSON object");
  return Validate(schema, params, "params");
}

Decision Evaluate(const std::vector<Policy>& policies, const std::string& agent,
                  const std::string& action, const json& params) {
  Decision d;
  d.reason = "no policy allows action '" + action + "' (deny by default)";
  for (const Policy& p : policies) {
    auto it = p.actions.find(action);
    if (it == p.actions.end()) continue;
    const ActionSpec& a = it->second;
    bool agent_ok = false;
    for (const auto& n : a.agents) agent_ok = agent_ok || n == agent;
    if (!agent_ok) {
      d.reason = "agent '" + agent + "' is not named by " + p.policy_id + " v" +
                 std::to_string(p.version) + " for action '" + action + "'";
      continue;
    }
    Status v = ValidateParams(a.params, params);
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
