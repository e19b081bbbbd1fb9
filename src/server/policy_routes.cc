// Policy-admin keys and signed, versioned policies (docs/api.md "Policy plane").
#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/hash.h"
#include "policy/signing.h"
#include "server/api.h"
#include "server/policy_plane.h"

namespace toani::server {
namespace {

using nlohmann::json;

HttpResponse Problem(const Status& s) { return ProblemFromStatus(s); }

bool HasAny(const Caller& c, std::initializer_list<Role> roles) {
  for (Role r : roles) {
    if (c.Has(r)) return true;
  }
  return false;
}

json KeyJson(const store::PolicyKeyRecord& k) {
  return {{"key_id", k.key_id},
          {"public_key", k.public_key},
          {"name", k.name},
          {"added_by", k.added_by},
          {"added_at", k.added_at},
          {"revoked_at", k.revoked_at.empty() ? json(nullptr) : json(k.revoked_at)}};
}

json SignersOf(const std::string& signatures) {
  json sigs = json::parse(signatures.empty() ? "[]" : signatures, nullptr, false);
  json out = json::array();
  if (sigs.is_array()) {
    for (const auto& s : sigs) out.push_back(s.value("keyid", ""));
  }
  return out;
}

json VersionJson(const store::PolicyRecord& r) {
  return {{"policy_id", r.policy_id},
          {"version", r.version},
          {"policy_hash", "sha256:" + crypto::Sha256Hex(r.document)},
          {"applied_at", r.applied_at},
          {"applied_by", r.applied_by},
          {"signers", SignersOf(r.signatures)}};
}

}  // namespace

void PolicyPlane::Register(RouteTable& t) {
  // Every handler goes through Handle, which routes on the path as the table matched it.
  auto h = [this](const RouteContext& c) {
    auto r = Handle(*c.caller, c.req, c.body);
    return r ? *r : ProblemResponse(404, "Not found", "no route " + c.req.path);
  };
  const std::set<Role> readers = {Role::kPolicyAdmin, Role::kApprover, Role::kAuditor};
  t.Add(
      {.method = "POST",
       .path = "/v1/policy-keys",
       .roles = {Role::kOperator},
       .json_body = true,
       .summary = "Register a policy-admin Ed25519 public key (PASERK k4.public)",
       .request_schema = {{"type", "object"},
                          {"required", {"public_key"}},
                          {"properties",
                           {{"public_key", {{"type", "string"}}}, {"name", {{"type", "string"}}}}}},
       .success_status = 201,
       .handler = h});
  t.Add({.method = "GET",
         .path = "/v1/policy-keys",
         .roles = {Role::kOperator, Role::kPolicyAdmin, Role::kAuditor},
         .summary = "List registered policy-admin keys",
         .handler = h});
  t.Add({.method = "POST",
         .path = "/v1/policy-keys/{key_id}/revoke",
         .roles = {Role::kOperator},
         .summary = "Revoke a policy-admin key (it signs nothing more)",
         .handler = h});
  t.Add({.method = "POST",
         .path = "/v1/policies",
         .roles = {Role::kPolicyAdmin},
         .json_body = true,
         .summary = "Apply a signed policy {policy, signatures} (docs/formats.md §9)",
         .request_schema = {{"type", "object"},
                            {"required", {"policy", "signatures"}},
                            {"properties",
                             {{"policy", {{"type", "object"}}},
                              {"signatures", {{"type", "array"}}}}}},
         .success_status = 201,
         .handler = h});
  t.Add({.method = "GET",
         .path = "/v1/policies",
         .roles = readers,
         .summary = "The current version of each policy",
         .handler = h});
  t.Add({.method = "POST",
         .path = "/v1/policies/simulate",
         .roles = {Role::kPolicyAdmin},
         .json_body = true,
         .summary = "Explain a decision without side effects",
         .handler = h});
  t.Add({.method = "GET",
         .path = "/v1/policies/{policy_id}",
         .roles = readers,
         .summary = "A policy version with its signed envelope",
         .query = {{{"name", "version"}, {"schema", {{"type", "integer"}, {"minimum", 1}}}}},
         .handler = h});
  t.Add({.method = "GET",
         .path = "/v1/policies/{policy_id}/history",
         .roles = readers,
         .summary = "Every version of a policy",
         .handler = h});
  t.Add({.method = "POST",
         .path = "/v1/authorize",
         .roles = {Role::kAgent},
         .json_body = true,
         .summary = "Ask for an Action Token: 200 allow, 202 approval required, 403 deny",
         .request_schema = {{"type", "object"},
                            {"required", {"action", "params"}},
                            {"properties",
                             {{"action", {{"type", "string"}}},
                              {"params", {{"type", "object"}}},
                              {"user", {{"type", "string"}}},
                              {"identity_proof", {{"type", "string"}}}}}},
         .handler = h});
  t.Add({.method = "GET",
         .path = "/v1/approvals",
         .roles = {Role::kApprover, Role::kAuditor},
         .summary = "Approval requests (default: pending)",
         .query = {{{"name", "status"},
                    {"schema",
                     {{"enum", {"pending", "approved", "denied", "expired", "redeemed", "all"}}}}}},
         .handler = h});
  t.Add({.method = "GET",
         .path = "/v1/approvals/{id}",
         .roles = {Role::kApprover, Role::kAuditor, Role::kAgent},
         .summary = "One approval request (an agent sees only its own)",
         .handler = h});
  t.Add({.method = "POST",
         .path = "/v1/approvals/{id}/approve",
         .roles = {Role::kApprover},
         .json_body = true,
         .summary = "Approve (distinct approvers, never one's own request)",
         .handler = h});
  t.Add({.method = "POST",
         .path = "/v1/approvals/{id}/deny",
         .roles = {Role::kApprover},
         .json_body = true,
         .summary = "Deny an approval request",
         .handler = h});
  t.Add({.method = "POST",
         .path = "/v1/approvals/{id}/token",
         .roles = {Role::kAgent},
         .summary = "CIBA-style poll: the token once approved, else authorization_pending, "
                    "slow_down, expired_token, access_denied",
         .handler = h});
}

std::optional<HttpResponse> PolicyPlane::Handle(const Caller& c, const HttpRequest& req,
                                                const json& body) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  auto method_not_allowed = [&] {
    return ProblemResponse(405, "Method not allowed", m + " is not supported on " + p);
  };
  if (p == "/v1/policy-keys") {
    if (m == "POST") return AddKey(c, body);
    if (m == "GET") return ListKeys(c);
    return method_not_allowed();
  }
  if (p.rfind("/v1/policy-keys/", 0) == 0) {
    std::string rest = p.substr(16);
    const std::string suffix = "/revoke";
    if (rest.size() > suffix.size() &&
        rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) == 0) {
      if (m != "POST") return method_not_allowed();
      return RevokeKey(c, rest.substr(0, rest.size() - suffix.size()));
    }
    return ProblemResponse(404, "Not found", "no route " + p);
  }
  if (p == "/v1/policies") {
    if (m == "POST") return ApplyPolicy(c, body);
    if (m == "GET") return ListPolicies(c);
    return method_not_allowed();
  }
  if (p == "/v1/policies/simulate") {
    if (m != "POST") return method_not_allowed();
    return Simulate(c, body);
  }
  if (p.rfind("/v1/policies/", 0) == 0) {
    std::string rest = p.substr(13);
    const std::string suffix = "/history";
    if (rest.size() > suffix.size() &&
        rest.compare(rest.size() - suffix.size(), suffix.size(), suffix) == 0) {
      if (m != "GET") return method_not_allowed();
      return PolicyHistory(c, rest.substr(0, rest.size() - suffix.size()));
    }
    if (rest.find('/') != std::string::npos)
      return ProblemResponse(404, "Not found", "no route " + p);
    if (m != "GET") return method_not_allowed();
    return GetPolicy(c, rest, req);
  }
  if (p == "/v1/authorize") {
    if (m != "POST") return method_not_allowed();
    return Authorize(c, body);
  }
  if (p == "/v1/approvals") {
    if (m != "GET") return method_not_allowed();
    return ListApprovals(c, req);
  }
  if (p.rfind("/v1/approvals/", 0) == 0) {
    std::string rest = p.substr(14);
    size_t slash = rest.find('/');
    std::string id = rest.substr(0, slash);
    std::string verb = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (id.empty()) return ProblemResponse(404, "Not found", "no route " + p);
    if (verb.empty()) {
      if (m != "GET") return method_not_allowed();
      return GetApproval(c, id);
    }
    if (verb == "approve" || verb == "deny") {
      if (m != "POST") return method_not_allowed();
      return DecideApproval(c, id, verb, body);
    }
    if (verb == "token") {
      if (m != "POST") return method_not_allowed();
      return PollToken(c, id);
    }
    return ProblemResponse(404, "Not found", "no route " + p);
  }
  return std::nullopt;
}

HttpResponse PolicyPlane::AddKey(const Caller& c, const json& body) {
  // Registering a signing key is an operator's act, so that holding the
  // policy-admin role alone does not let anyone sign policies with a key of their own.
  if (!c.Has(Role::kOperator))
    return Problem(Status::PermissionDenied("operator role required to register policy keys"));
  if (!body.contains("public_key") || !body["public_key"].is_string())
    return Problem(Status::InvalidArgument("missing field 'public_key' (PASERK k4.public)"));
  auto pk = policy::ParsePublicKey(body["public_key"]);
  if (!pk.ok()) return Problem(Status::InvalidArgument("public_key: " + pk.status().message()));
  std::string name =
      body.contains("name") && body["name"].is_string() ? body["name"].get<std::string>() : "";
  if (name.size() > 128) return Problem(Status::InvalidArgument("name: at most 128 characters"));
  store::PolicyKeyRecord rec{c.tenant,
                             policy::PublicKeyId(*pk),
                             body["public_key"],
                             name,
                             c.spiffe_id,
                             FormatRfc3339(d_.clock()),
                             ""};
  if (Status st = d_.keys->AddPolicyKey(rec); !st.ok()) return Problem(st);
  auto a = d_.audit->Append({{"type", "policy_key.registered"},
                             {"tenant", c.tenant},
                             {"actor", c.spiffe_id},
                             {"key_id", rec.key_id},
                             {"public_key", rec.public_key},
                             {"tee", Tee()}});
  if (!a.ok()) return Problem(a.status());
  return JsonResponse(201, KeyJson(rec));
}

HttpResponse PolicyPlane::ListKeys(const Caller& c) {
  if (!HasAny(c, {Role::kOperator, Role::kPolicyAdmin, Role::kAuditor}))
    return Problem(Status::PermissionDenied("operator, policy-admin or auditor role required"));
  auto keys = d_.keys->ListPolicyKeys(c.tenant);
  if (!keys.ok()) return Problem(keys.status());
  json out = json::array();
  for (const auto& k : *keys) out.push_back(KeyJson(k));
  return JsonResponse(200, {{"keys", out}});
}

HttpResponse PolicyPlane::RevokeKey(const Caller& c, const std::string& key_id) {
  if (!c.Has(Role::kOperator))
    return Problem(Status::PermissionDenied("operator role required to revoke policy keys"));
  if (Status st = d_.keys->RevokePolicyKey(c.tenant, key_id, FormatRfc3339(d_.clock())); !st.ok())
    return Problem(st);
  auto a = d_.audit->Append({{"type", "policy_key.revoked"},
                             {"tenant", c.tenant},
                             {"actor", c.spiffe_id},
                             {"key_id", key_id},
                             {"tee", Tee()}});
  if (!a.ok()) return Problem(a.status());
  auto k = d_.keys->GetPolicyKey(c.tenant, key_id);
  if (!k.ok()) return Problem(k.status());
  return JsonResponse(200, KeyJson(*k));
}

HttpResponse PolicyPlane::ApplyPolicy(const Caller& c, const json& body) {
  if (!c.Has(Role::kPolicyAdmin))
    return Problem(Status::PermissionDenied("policy-admin role required"));
  // 1. A signed envelope, every signature by a registered, unrevoked key, valid.
  auto sp = policy::ParseSignedPolicy(body);
  if (!sp.ok()) return Problem(sp.status());
  json signers = json::array();
  for (const auto& sig : sp->signatures) {
    auto key = d_.keys->GetPolicyKey(c.tenant, sig.key_id);
    if (!key.ok()) {
      if (key.status().code() != StatusCode::kNotFound) return Problem(key.status());
      return Problem(Status::PermissionDenied("policy is signed by key " + sig.key_id +
                                              ", which is not registered for this tenant"));
    }
    if (!key->revoked_at.empty())
      return Problem(Status::PermissionDenied("policy is signed by key " + sig.key_id +
                                              ", revoked at " + key->revoked_at));
    auto pk = policy::ParsePublicKey(key->public_key);
    if (!pk.ok()) return Problem(Status::Internal("stored policy key is malformed"));
    if (Status v = policy::VerifyPolicySignature(sp->canonical, sig, *pk); !v.ok())
      return Problem(Status::PermissionDenied(v.message()));
    signers.push_back(sig.key_id);
  }
  // 2. A valid document, for this tenant, naming credentials that exist.
  auto pol = policy::ParsePolicy(sp->policy);
  if (!pol.ok()) return Problem(pol.status());
  if (!pol->tenant.empty() && pol->tenant != c.tenant)
    return Problem(Status::PermissionDenied("policy is for tenant '" + pol->tenant + "'"));
  for (const auto& [name, a] : pol->actions) {
    auto cred = d_.store->GetCredential(c.tenant, a.credential_id);
    if (!cred.ok()) {
      return Problem(
          Status::InvalidArgument("actions." + name + ".credential: " + cred.status().message()));
    }
    const std::string& whsec = a.connector_spec.webhook_secret_credential;
    if (!whsec.empty() && !d_.store->GetCredential(c.tenant, whsec).ok()) {
      return Problem(Status::InvalidArgument("actions." + name +
                                             ".webhook.secret_credential: no credential " + whsec));
    }
  }
  // 3. Strictly newer than every stored version (the store checks atomically).
  store::PolicyRecord rec{c.tenant,
                          pol->policy_id,
                          pol->version,
                          sp->canonical,
                          FormatRfc3339(d_.clock()),
                          body["signatures"].dump(),
                          c.spiffe_id};
  if (Status st = d_.store->PutPolicy(rec); !st.ok()) return Problem(st);
  const std::string hash = "sha256:" + crypto::Sha256Hex(sp->canonical);
  auto a = d_.audit->Append({{"type", "policy.applied"},
                             {"tenant", c.tenant},
                             {"actor", c.spiffe_id},
                             {"policy_id", pol->policy_id},
                             {"policy_version", pol->version},
                             {"policy_hash", hash},
                             {"signers", signers},
                             {"tee", Tee()}});
  if (!a.ok()) return Problem(a.status());
  return JsonResponse(201, {{"policy_id", pol->policy_id},
                            {"version", pol->version},
                            {"actions", pol->actions.size()},
                            {"policy_hash", hash},
                            {"signers", signers}});
}

HttpResponse PolicyPlane::ListPolicies(const Caller& c) {
  if (!HasAny(c, {Role::kPolicyAdmin, Role::kAuditor, Role::kApprover}))
    return Problem(Status::PermissionDenied("policy-admin, approver or auditor role required"));
  auto recs = d_.store->LatestPolicies(c.tenant);
  if (!recs.ok()) return Problem(recs.status());
  json out = json::array();
  for (const auto& r : *recs) out.push_back(VersionJson(r));
  return JsonResponse(200, {{"policies", out}});
}

HttpResponse PolicyPlane::GetPolicy(const Caller& c, const std::string& id,
                                    const HttpRequest& req) {
  if (!HasAny(c, {Role::kPolicyAdmin, Role::kAuditor, Role::kApprover}))
    return Problem(Status::PermissionDenied("policy-admin, approver or auditor role required"));
  StatusOr<store::PolicyRecord> rec = Status::NotFound("policy " + id + " not found");
  auto v = req.query.find("version");
  if (v != req.query.end()) {
    if (v->second.empty() || v->second.size() > 15 ||
        v->second.find_first_not_of("0123456789") != std::string::npos) {
      return Problem(Status::InvalidArgument("query 'version' must be a positive integer"));
    }
    rec = d_.store->GetPolicy(c.tenant, id, std::stoll(v->second));
  } else {
    auto hist = d_.store->PolicyHistory(c.tenant, id);
    if (!hist.ok()) return Problem(hist.status());
    rec = hist->back();
  }
  if (!rec.ok()) return Problem(rec.status());
  json out = VersionJson(*rec);
  out["signed"] = {{"policy", json::parse(rec->document, nullptr, false)},
                   {"signatures",
                    json::parse(rec->signatures.empty() ? "[]" : rec->signatures, nullptr, false)}};
  return JsonResponse(200, out);
}

HttpResponse PolicyPlane::PolicyHistory(const Caller& c, const std::string& id) {
  if (!HasAny(c, {Role::kPolicyAdmin, Role::kAuditor, Role::kApprover}))
    return Problem(Status::PermissionDenied("policy-admin, approver or auditor role required"));
  auto hist = d_.store->PolicyHistory(c.tenant, id);
  if (!hist.ok()) return Problem(hist.status());
  json out = json::array();
  for (const auto& r : *hist) out.push_back(VersionJson(r));
  return JsonResponse(200, {{"policy_id", id}, {"versions", out}});
}

HttpResponse PolicyPlane::Simulate(const Caller& c, const json& body) {
  if (!c.Has(Role::kPolicyAdmin))
    return Problem(Status::PermissionDenied("policy-admin role required"));
  for (const char* k : {"agent", "action"}) {
    if (!body.contains(k) || !body[k].is_string())
      return Problem(Status::InvalidArgument(std::string("missing field '") + k + "'"));
  }
  json params = body.value("params", json::object());
  SysTime at = d_.clock();
  if (body.contains("at")) {
    auto t = ParseRfc3339(body["at"].is_string() ? body["at"].get<std::string>() : "");
    if (!t.ok()) return Problem(Status::InvalidArgument("at: an RFC 3339 time"));
    at = *t;
  }
  // Against the current policies, or a candidate document (signed or not: nothing is
  // stored) that replaces the current version of its policy_id.
  auto current = CurrentPolicies(c.tenant);
  if (!current.ok()) return Problem(current.status());
  std::vector<policy::Policy> policies = **current;
  if (body.contains("policy")) {
    json doc = body["policy"];
    if (doc.is_object() && doc.contains("policy") && doc.contains("signatures"))
      doc = doc["policy"];
    auto cand = policy::ParsePolicy(doc);
    if (!cand.ok()) return Problem(cand.status());
    std::erase_if(policies,
                  [&](const policy::Policy& p) { return p.policy_id == cand->policy_id; });
    policies.push_back(std::move(*cand));
    std::sort(policies.begin(), policies.end(),
              [](const auto& a, const auto& b) { return a.policy_id < b.policy_id; });
  }
  policy::DecisionRequest dreq;
  dreq.tenant = c.tenant;
  dreq.agent = body["agent"];
  dreq.action = body["action"];
  dreq.params = &params;
  dreq.now = at;
  dreq.user = body.value("user", "");
  dreq.identity_proof = body.value("identity_proof", "");
  policy::FullDecision d = policy::Decide(policies, dreq, Env(c.tenant, /*dry_run=*/true));
  json out = {
      {"decision", policy::OutcomeName(d.outcome)},
      {"rule", d.rule},
      {"reason", d.reason},
      {"explain", d.explain},
      {"params_hash", params.is_object() ? json(policy::ParamsHash(params)) : json(nullptr)}};
  if (d.policy != nullptr)
    out["policy"] = {{"id", d.policy->policy_id}, {"version", d.policy->version}};
  if (d.outcome == policy::Outcome::kApprovalRequired)
    out["approvers_required"] = d.approvers_required;
  return JsonResponse(200, out);
}

StatusOr<std::shared_ptr<const std::vector<policy::Policy>>> PolicyPlane::CurrentPolicies(
    const std::string& tenant) {
  // Every request checks that the parsed copy is current (a new version applied on any
  // node takes effect at once): first by the store's stamp, which changes whenever any
  // version is stored (Store::PoliciesStamp); when that moved, or the store has none
  // (the nodes of a cluster share PostgreSQL), by reading the tenant's versions.
  // Documents are read and parsed only when a version changed. The stamp is read before
  // the versions, so a version stored in between leaves an older stamp in the cache and
  // the next request checks again.
  TOANI_ASSIGN_OR_RETURN(std::optional<int64_t> stamp, d_.store->PoliciesStamp());
  if (stamp) {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = cache_.find(tenant);
    if (it != cache_.end() && it->second.stamp == stamp) return it->second.policies;
  }
  {
    TOANI_ASSIGN_OR_RETURN(auto current, d_.store->LatestPolicyVersions(tenant));
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = cache_.find(tenant);
    if (it != cache_.end() && it->second.versions == current) {
      it->second.stamp = stamp;
      return it->second.policies;
    }
  }
  TOANI_ASSIGN_OR_RETURN(auto recs, d_.store->LatestPolicies(tenant));
  std::vector<std::pair<std::string, int64_t>> versions;
  for (const auto& r : recs) versions.emplace_back(r.policy_id, r.version);
  auto parsed = std::make_shared<std::vector<policy::Policy>>();
  for (const auto& r : recs) {
    // A version stored before policies were signed allows nothing: re-apply it signed.
    if (r.signatures.empty()) continue;
    auto p = policy::ParsePolicy(json::parse(r.document, nullptr, false));
    // Stored documents were validated when applied; one that no longer parses (an
    // older language) is left out: it allows nothing (deny by default).
    if (p.ok()) parsed->push_back(std::move(p).value());
  }
  std::lock_guard<std::mutex> l(cache_mu_);
  cache_[tenant] = {versions, stamp, parsed};
  return std::shared_ptr<const std::vector<policy::Policy>>(parsed);
}

policy::DecisionEnv PolicyPlane::Env(const std::string& tenant, bool dry_run) {
  policy::DecisionEnv env;
  env.limits = d_.limits;
  env.dry_run = dry_run;
  env.sensitivity = [this, tenant](const std::string& cred_id) {
    // A credential's sensitivity is fixed when it is added (no route or store method
    // changes it, and credentials are never deleted), so a stored one is remembered.
    // A failed lookup is not remembered.
    std::pair<std::string, std::string> key{tenant, cred_id};
    {
      std::lock_guard<std::mutex> l(sensitivity_mu_);
      if (auto it = sensitivity_.find(key); it != sensitivity_.end()) return it->second;
    }
    auto cred = d_.store->GetCredential(tenant, cred_id);
    // Unknown or unreadable: the strictest reading that still lets a human decide.
    if (!cred.ok()) return policy::Sensitivity::kPrivileged;
    auto s = policy::ParseSensitivity(cred->sensitivity);
    if (!s.ok()) return policy::Sensitivity::kPrivileged;
    std::lock_guard<std::mutex> l(sensitivity_mu_);
    if (sensitivity_.size() >= kMaxRememberedSensitivities) sensitivity_.clear();
    sensitivity_.emplace(std::move(key), *s);
    return *s;
  };
  return env;
}

}  // namespace toani::server
