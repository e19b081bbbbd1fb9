#include "server/api.h"

#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"
#include "common/log.h"
#include "crypto/hash.h"
#include "policy/policy.h"
#include "server/audit_plane.h"
#include "server/identity.h"
#include "server/key_routes.h"
#include "server/mcp.h"

namespace toani::server {
namespace {

using nlohmann::json;

StatusOr<std::string> RequiredString(const json& j, const char* key, size_t max_len = 256) {
  if (!j.contains(key)) return Status::InvalidArgument(std::string("missing field '") + key + "'");
  if (!j[key].is_string() || j[key].get<std::string>().empty()) {
    return Status::InvalidArgument(std::string("field '") + key + "' must be a non-empty string");
  }
  if (j[key].get<std::string>().size() > max_len)
    return Status::InvalidArgument(std::string("field '") + key + "' is too long");
  return j[key].get<std::string>();
}

json Tee(const json& keyd_status) {
  return {{"measurement", keyd_status.value("measurement", "")},
          {"simulated", keyd_status.value("simulated", true)}};
}

}  // namespace

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse ProblemFromStatus(const Status& s) {
  int code = 500;
  const char* title = "Internal error";
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      code = 400;
      title = "Bad request";
      break;
    case StatusCode::kUnauthenticated:
      code = 401;
      title = "Unauthenticated";
      break;
    case StatusCode::kPermissionDenied:
      code = 403;
      title = "Forbidden";
      break;
    case StatusCode::kNotFound:
      code = 404;
      title = "Not found";
      break;
    case StatusCode::kAlreadyExists:
      code = 409;
      title = "Conflict";
      break;
    case StatusCode::kFailedPrecondition:
      code = 409;
      title = "Conflict";
      break;
    case StatusCode::kPayloadTooLarge:
      code = 413;
      title = "Payload too large";
      break;
    case StatusCode::kUnavailable:
      code = 503;
      title = "Service unavailable";
      break;
    default:
      break;
  }
  return ProblemResponse(code, title, s.message());
}

Api::Api(ApiDeps deps) : d_(std::move(deps)) {
  RegisterOpsRoutes(table_, d_);
  RegisterKeyRoutes(table_, d_.keyd);
  RegisterAuditRoutes(table_, d_);
  RegisterCoreRoutes();
  if (d_.policy != nullptr) d_.policy->Register(table_);  // policy plane (issue 5)
  RegisterMcpRoutes(table_, d_, d_.mcp_allowed_origins);
  // Routes of further planes register here: RegisterXRoutes(table_, d_);
  if (d_.keyd != nullptr) table_.set_sealed_probe([k = d_.keyd] { return k->Sealed(); });
}

HttpResponse Api::Handle(const HttpRequest& req, bool mtls) const {
  return table_.Dispatch(req, mtls);
}

void Api::RegisterCoreRoutes() {
  const json named_object = {{"type", "object"}};
  table_.Add({.method = "POST",
              .path = "/v1/credentials",
              .roles = {Role::kCredentialAdmin},
              .json_body = true,
              .summary = "Add a credential sealed to keyd's intake key (never plaintext)",
              .request_schema = {{"type", "object"},
                                 {"required", {"name", "type", "sealed"}},
                                 {"properties",
                                  {{"name", {{"type", "string"}, {"maxLength", 128}}},
                                   {"type", {{"type", "string"}, {"maxLength", 64}}},
                                   {"sealed", {{"type", "string"}}},
                                   {"sensitivity",
                                    {{"enum", {"standard", "privileged", "personal", "kyc_gated"}}}}}}},
              .success_status = 201,
              .handler = [this](const RouteContext& c) { return AddCredential(*c.caller, c.body); }});
  table_.Add({.method = "GET",
              .path = "/v1/credentials",
              .roles = {Role::kCredentialAdmin},
              .summary = "List the tenant's credentials (metadata only, never values)",
              .handler = [this](const RouteContext& c) { return ListCredentials(*c.caller); }});
  table_.Add({.method = "POST",
              .path = "/v1/executions",
              .roles = {Role::kAgent},
              .json_body = true,
              .summary = "Execute an action with its Action Token and the same parameters",
              .request_schema = {{"type", "object"},
                                 {"required", {"token", "params"}},
                                 {"properties",
                                  {{"token", {{"type", "string"}}}, {"params", named_object}}}},
              .handler = [this](const RouteContext& c) { return ExecuteAction(*c.caller, c.body); }});
  table_.Add({.method = "GET",
              .path = "/v1/audit/root",
              .access = Access::kAnyIdentity,
              .tenancy = Tenancy::kGlobal,
              .summary = "Size and Merkle root of the audit log",
              .handler = [this](const RouteContext&) { return AuditRoot(); }});
  table_.Add({.method = "GET",
              .path = "/v1/audit/entries",
              .roles = {Role::kAuditor},
              .summary = "The caller's tenant's audit entries in [from, to) (at most 1000 scanned)",
              .query = {{{"name", "from"}, {"schema", {{"type", "integer"}, {"minimum", 0}}}},
                        {{"name", "to"}, {"schema", {{"type", "integer"}, {"minimum", 0}}}}},
              .handler = [this](const RouteContext& c) { return AuditEntries(*c.caller, c.req); }});
  table_.Add({.method = "GET",
              .path = "/v1/executions/{execution_id}",
              .roles = {Role::kAgent},
              .summary = "An execution started by the caller (webhook executions: pending, "
                         "succeeded, failed or expired)",
              .handler = [this](const RouteContext& c) {
                auto r = d_.executor->GetExecution(*c.caller, c.path_params.at("execution_id"));
                if (!r.ok()) return ProblemFromStatus(r.status());
                return JsonResponse(200, *r);
              }});
  table_.Add({.method = "POST",
              .path = "/v1/callbacks/{execution_id}",
              .access = Access::kPublic,
              .tenancy = Tenancy::kGlobal,
              .summary = "Standard Webhooks callback finishing a pending execution "
                         "(authenticated by its signature, checked in keyd)",
              .success_status = 204,
              .handler = [this](const RouteContext& c) {
                return Callback(c.req, c.path_params.at("execution_id"));
              }});
}

HttpResponse Api::Callback(const HttpRequest& req, const std::string& id) {
  if (id.size() != 28 || id.rfind("exe_", 0) != 0 ||
      id.find_first_not_of("0123456789abcdef", 4) != std::string::npos) {
    return ProblemFromStatus(Status::NotFound("no such callback"));
  }
  if (req.body.size() > 64 * 1024) {
    return ProblemFromStatus(Status::PayloadTooLarge("callback body exceeds 64 KiB"));
  }
  WebhookHeadersIn h{req.Header("webhook-id"), req.Header("webhook-timestamp"),
                     req.Header("webhook-signature")};
  Status st = d_.executor->HandleCallback(id, h, req.body);
  if (!st.ok()) return ProblemFromStatus(st);
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse Api::AddCredential(const Caller& c, const json& body) {
  if (!c.Has(Role::kCredentialAdmin))
    return ProblemFromStatus(Status::PermissionDenied("credential-admin role required"));
  auto name = RequiredString(body, "name", 128);
  if (!name.ok()) return ProblemFromStatus(name.status());
  auto type = RequiredString(body, "type", 64);
  if (!type.ok()) return ProblemFromStatus(type.status());
  auto sealed = RequiredString(body, "sealed", 64 * 1024);
  if (!sealed.ok()) return ProblemFromStatus(sealed.status());
  std::string sensitivity = "standard";
  if (body.contains("sensitivity")) {
    if (!body["sensitivity"].is_string() ||
        !policy::ParseSensitivity(body["sensitivity"].get<std::string>()).ok()) {
      return ProblemFromStatus(Status::InvalidArgument(
          "sensitivity must be standard, privileged, personal or kyc_gated"));
    }
    sensitivity = body["sensitivity"];
  }
  if (body.contains("secret") || body.contains("plaintext") || body.contains("value")) {
    return ProblemFromStatus(
        Status::InvalidArgument("plaintext credentials are refused: seal the value to keyd's "
                                "intake key (toani credential add does this)"));
  }
  uint8_t rnd[8];
  randombytes_buf(rnd, sizeof rnd);
  const std::string id = "cred_" + HexEncode(std::span<const uint8_t>(rnd, sizeof rnd));
  auto imported = d_.keyd->Call({{"op", "credential.import"},
                                 {"tenant", c.tenant},
                                 {"credential_id", id},
                                 {"version", 1},
                                 {"sealed", *sealed}});
  if (!imported.ok()) return ProblemFromStatus(imported.status());
  store::CredentialRecord rec{c.tenant,
                              id,
                              *name,
                              *type,
                              1,
                              (*imported)["blob"],
                              (*imported)["fingerprint"],
                              FormatRfc3339(d_.clock()),
                              sensitivity};
  Status st = d_.store->AddCredential(rec);
  if (!st.ok()) return ProblemFromStatus(st);
  auto a = d_.audit->Append({{"type", "credential.added"},
                             {"tenant", c.tenant},
                             {"actor", c.spiffe_id},
                             {"credential_id", id},
                             {"sensitivity", sensitivity},
                             {"tee", Tee(d_.keyd_status)}});
  if (!a.ok()) return ProblemFromStatus(a.status());
  return JsonResponse(201, {{"id", id},
                            {"name", rec.name},
                            {"type", rec.type},
                            {"sensitivity", rec.sensitivity},
                            {"version", rec.version},
                            {"fingerprint", rec.fingerprint},
                            {"created_at", rec.created_at}});
}

HttpResponse Api::ListCredentials(const Caller& c) {
  if (!c.Has(Role::kCredentialAdmin))
    return ProblemFromStatus(Status::PermissionDenied("credential-admin role required"));
  auto list = d_.store->ListCredentials(c.tenant);
  if (!list.ok()) return ProblemFromStatus(list.status());
  json out = json::array();
  for (const auto& r : *list) {
    out.push_back({{"id", r.id},
                   {"name", r.name},
                   {"type", r.type},
                   {"sensitivity", r.sensitivity},
                   {"version", r.version},
                   {"fingerprint", r.fingerprint},
                   {"created_at", r.created_at}});
  }
  return JsonResponse(200, {{"credentials", out}});
}

HttpResponse Api::ExecuteAction(const Caller& c, const json& body) {
  if (!c.Has(Role::kAgent))
    return ProblemFromStatus(Status::PermissionDenied("only agents execute actions"));
  auto token = RequiredString(body, "token", 8192);
  if (!token.ok()) return ProblemFromStatus(token.status());
  if (!body.contains("params"))
    return ProblemFromStatus(Status::InvalidArgument("missing field 'params'"));
  auto out = d_.executor->Execute(c, *token, body["params"]);
  if (!out.ok()) return ProblemFromStatus(out.status());
  // A webhook execution is accepted and pending: poll GET /v1/executions/{id}.
  return JsonResponse(out->value("status", "") == "pending" ? 202 : 200, *out);
}

HttpResponse Api::AuditRoot() {
  return JsonResponse(200, {{"size", d_.audit->size()}, {"root", d_.audit->RootHex()}});
}

HttpResponse Api::AuditEntries(const Caller& c, const HttpRequest& req) {
  uint64_t size = d_.audit->size();
  auto num = [](const std::map<std::string, std::string>& q, const char* k,
                uint64_t dflt) -> StatusOr<uint64_t> {
    auto it = q.find(k);
    if (it == q.end()) return dflt;
    if (it->second.empty() || it->second.size() > 18 ||
        it->second.find_first_not_of("0123456789") != std::string::npos) {
      return Status::InvalidArgument(std::string("query '") + k +
                                     "' must be a non-negative integer");
    }
    return std::stoull(it->second);
  };
  auto from = num(req.query, "from", 0);
  if (!from.ok()) return ProblemFromStatus(from.status());
  auto to = num(req.query, "to", size);
  if (!to.ok()) return ProblemFromStatus(to.status());
  uint64_t end = std::min({*to, size, *from + 1000});
  if (*from > end) return ProblemFromStatus(Status::InvalidArgument("'from' must not exceed 'to'"));
  auto rows = d_.store->ReadAudit(*from, end);
  if (!rows.ok()) return ProblemFromStatus(rows.status());
  json entries = json::array();
  // One log for the deployment, but a tenant sees only its own entries.
  for (const auto& r : *rows) {
    json e = json::parse(r.entry, nullptr, false);
    if (e.is_object() && e.value("tenant", "") == c.tenant) entries.push_back(std::move(e));
  }
  return JsonResponse(200, {{"size", size}, {"from", *from}, {"to", end}, {"entries", entries}});
}

}  // namespace toani::server
