#include "server/key_routes.h"

#include <time.h>

#include <thread>

#include "common/log.h"

namespace toani::server {
namespace {

using nlohmann::json;

HttpResponse KeydCall(keyd::KeyServiceClient* keyd, const json& req,
                      const std::function<json(const json&)>& shape) {
  auto r = keyd->Call(req);
  if (!r.ok()) return ProblemFromStatus(r.status());
  return JsonResponse(200, shape(*r));
}

json Pick(const json& from, std::initializer_list<const char*> keys) {
  json out = json::object();
  for (const char* k : keys) {
    if (from.contains(k)) out[k] = from[k];
  }
  return out;
}

HttpResponse Forbidden(const char* role) {
  return ProblemFromStatus(Status::PermissionDenied(std::string(role) + " role required"));
}

}  // namespace

std::optional<HttpResponse> HandleKeyRoute(keyd::KeyServiceClient* keyd, const Caller& c,
                                           const HttpRequest& req, const json& body) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  if (p == "/v1/sys/status" && m == "GET") {
    return KeydCall(keyd, {{"op", "status"}}, [](const json& s) {
      return Pick(s, {"mode", "initialized", "sealed", "progress", "threshold", "shares",
                      "measurement", "simulated", "attestation", "secret_memory"});
    });
  }
  if (p == "/v1/sys/init" && m == "POST") {
    if (!c.Has(Role::kOperator)) return Forbidden("operator");
    json r = Pick(body, {"shares", "threshold", "recipient_public_key"});
    r["op"] = "operator.init";
    return KeydCall(keyd, r, [](const json& s) {
      return Pick(s, {"shares", "threshold", "sealed"});
    });
  }
  if (p == "/v1/sys/unseal" && m == "POST") {
    if (!c.Has(Role::kOperator)) return Forbidden("operator");
    json r = Pick(body, {"sealed_share", "reset"});
    r["op"] = "operator.unseal";
    auto out = KeydCall(keyd, r, [](const json& s) {
      return Pick(s, {"sealed", "progress", "threshold"});
    });
    Log(LogLevel::kInfo, "server", "unseal_share",
        {{"actor", c.spiffe_id}, {"status", out.status}});
    return out;
  }
  if (p == "/v1/sys/rekey" && m == "POST") {
    if (!c.Has(Role::kOperator)) return Forbidden("operator");
    json r = Pick(body, {"sealed_shares", "shares", "threshold", "recipient_public_key"});
    r["op"] = "operator.rekey";
    return KeydCall(keyd, r, [](const json& s) { return Pick(s, {"shares", "threshold"}); });
  }
  if (p == "/v1/attestation" && m == "GET") {
    auto it = req.query.find("nonce");
    if (it == req.query.end()) {
      return ProblemFromStatus(
          Status::InvalidArgument("?nonce=<base64url, 16..64 bytes> is required"));
    }
    return KeydCall(keyd, {{"op", "attestation.evidence"}, {"nonce", it->second}},
                    [](const json& s) { return s["evidence"]; });
  }
  if (p == "/v1/keyd" && m == "GET") {
    return KeydCall(keyd, {{"op", "status"}}, [](const json& s) {
      return Pick(s, {"intake_public_key", "measurement", "simulated", "sealed"});
    });
  }
  if (keyd->Sealed()) {
    return ProblemResponse(
        503, "Service unavailable",
        "keyd is sealed: only /v1/sys/status, /v1/sys/unseal and /v1/attestation "
        "answer until an operator unseals it (toani operator unseal)");
  }
  if (p == "/v1/tenant/rotate-key" && m == "POST") {
    if (!c.Has(Role::kOperator)) return Forbidden("operator");
    return KeydCall(keyd, {{"op", "tenant.rotate"}, {"tenant", c.tenant}}, [](const json& s) {
      return Pick(s, {"tenant", "key_version"});
    });
  }
  return std::nullopt;
}

StatusOr<uint16_t> ServeWhileSealed(const TlsServerConfig& tls, HttpsServerOptions options,
                                    keyd::KeyServiceClient* keyd, const sigset_t& sigs,
                                    const std::function<void(uint16_t port)>& on_listening) {
  auto https = HttpsServer::Start(tls, options, [keyd](const HttpRequest& r) {
    auto caller = CallerFromSpiffeId(r.peer.uri_san);
    if (!r.peer.authenticated || !caller.ok()) {
      return ProblemFromStatus(Status::Unauthenticated("a client certificate is required"));
    }
    json body = json::object();
    if (r.method == "POST") {
      body = json::parse(r.body, nullptr, false);
      if (body.is_discarded() || !body.is_object())
        return ProblemResponse(400, "Bad request", "body must be a JSON object");
    }
    auto resp = HandleKeyRoute(keyd, *caller, r, body);
    return resp ? *resp : ProblemResponse(503, "Service unavailable", "keyd is still starting");
  });
  if (!https.ok()) return https.status();
  uint16_t port = (*https)->port();
  Log(LogLevel::kWarn, "server", "sealed",
      {{"port", port}, {"why", "keyd has no root key yet: toani operator init / unseal"}});
  on_listening(port);
  const timespec tick{0, 200 * 1000 * 1000};
  for (;;) {
    if (sigtimedwait(&sigs, nullptr, &tick) > 0) {
      (*https)->Stop();
      return Status::Unavailable("stopped while sealed");
    }
    if (!keyd->Sealed()) break;
  }
  (*https)->Stop();
  Log(LogLevel::kInfo, "server", "unsealed", {{"port", port}});
  return port;
}

}  // namespace toani::server
