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

HttpResponse Api::Handle(const HttpRequest& req) {
  if (req.path == "/healthz" && req.method == "GET") return JsonResponse(200, {{"status", "ok"}});
  if (auto r = HandleAuditRoute(d_, req)) return *r;  // /readyz, /v1/audit/* (audit_routes.cc)
  auto caller = CallerFromSpiffeId(req.peer.uri_san);
  if (!req.peer.authenticated || !caller.ok()) {
    return ProblemFromStatus(caller.ok()
                                 ? Status::Unauthenticated("a client certificate is required")
                                 : caller.status());
  }
  const Caller& c = *caller;
  json body = json::object();
  if (req.method == "POST" || req.method == "PUT") {
    if (req.Header("content-type").rfind("application/json", 0) != 0) {
      return ProblemResponse(415, "Unsupported media type", "send Content-Type: application/json");
    }
    body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return ProblemResponse(400, "Bad request", "body is not valid JSON");
    if (!body.is_object()) return ProblemResponse(400, "Bad request", "body must be a JSON object");
  }
  // Key plane (/v1/sys/*, /v1/attestation, /v1/keyd, /v1/tenant/*) and the sealed gate.
  if (auto r = HandleKeyRoute(d_.keyd, c, req, body)) return *r;
  // Policy plane: /v1/policy-keys, /v1/policies*, /v1/authorize, /v1/approvals*.
  if (d_.policy != nullptr) {
    if (auto r = d_.policy->Handle(c, req, body)) return *r;
  }
  const std::string& p = req.path;
  const std::string& m = req.method;
  if (p == "/v1/credentials" && m == "POST") return AddCredential(c, body);
  if (p == "/v1/credentials" && m == "GET") return ListCredentials(c);
  if (p == "/v1/executions" && m == "POST") return ExecuteAction(c, body);
  if (p == "/v1/audit/root" && m == "GET") return AuditRoot();
  if (p == "/v1/audit/entries" && m == "GET") {
    if (!c.Has(Role::kAuditor))
      return ProblemFromStatus(Status::PermissionDenied("auditor role required"));
    return AuditEntries(req);
  }
  static const char* kKnown[] = {"/v1/keyd", "/v1/credentials", "/v1/executions",
                                 "/v1/audit/root", "/v1/audit/entries"};
  for (const char* k : kKnown) {
    if (p == k) return ProblemResponse(405, "Method not allowed", m + " is not supported on " + p);
  }
  return ProblemResponse(404, "Not found", "no route " + p);
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
    if (!body["sensitivity"].is_string() || !policy::ParseSensitivity(body["sensitivity"].get<std::string>()).ok())
      return ProblemFromStatus(Status::InvalidArgument(
          "sensitivity must be standard, privileged, personal or kyc_gated"));
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
  return JsonResponse(200, *out);
}

HttpResponse Api::AuditRoot() {
  return JsonResponse(200, {{"size", d_.audit->size()}, {"root", d_.audit->RootHex()}});
}

HttpResponse Api::AuditEntries(const HttpRequest& req) {
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
  for (const auto& r : *rows) entries.push_back(json::parse(r.entry));
  return JsonResponse(200, {{"size", size}, {"from", *from}, {"to", end}, {"entries", entries}});
}

}  // namespace toani::server
