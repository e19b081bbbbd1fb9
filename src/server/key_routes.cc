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

}  // namespace

void RegisterKeyRoutes(RouteTable& t, keyd::KeyServiceClient* keyd) {
  t.Add({.method = "GET",
         .path = "/v1/sys/status",
         .access = Access::kAnyIdentity,
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .summary = "Seal state, unseal progress and custody mode",
         .handler = [keyd](const RouteContext&) {
           return KeydCall(keyd, {{"op", "status"}}, [](const json& s) {
             return Pick(s, {"mode", "initialized", "sealed", "progress", "threshold", "shares",
                             "measurement", "simulated", "attestation", "secret_memory"});
           });
         }});
  t.Add({.method = "POST",
         .path = "/v1/sys/init",
         .roles = {Role::kOperator},
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .json_body = true,
         .summary = "Make the root key and its Shamir shares (sealed to the caller's key)",
         .handler = [keyd](const RouteContext& c) {
           json r = Pick(c.body, {"shares", "threshold", "recipient_public_key"});
           r["op"] = "operator.init";
           return KeydCall(keyd, r, [](const json& s) {
             return Pick(s, {"shares", "threshold", "sealed"});
           });
         }});
  t.Add({.method = "POST",
         .path = "/v1/sys/unseal",
         .roles = {Role::kOperator},
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .json_body = true,
         .summary = "Submit one unseal share (sealed to keyd's intake key), or reset",
         .handler = [keyd](const RouteContext& c) {
           json r = Pick(c.body, {"sealed_share", "reset"});
           r["op"] = "operator.unseal";
           auto out = KeydCall(keyd, r, [](const json& s) {
             return Pick(s, {"sealed", "progress", "threshold"});
           });
           Log(LogLevel::kInfo, "server", "unseal_share",
               {{"actor", c.caller->spiffe_id}, {"status", out.status}});
           return out;
         }});
  t.Add({.method = "POST",
         .path = "/v1/sys/rekey",
         .roles = {Role::kOperator},
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .json_body = true,
         .summary = "New shares from a quorum of the current ones",
         .handler = [keyd](const RouteContext& c) {
           json r = Pick(c.body, {"sealed_shares", "shares", "threshold", "recipient_public_key"});
           r["op"] = "operator.rekey";
           return KeydCall(keyd, r, [](const json& s) { return Pick(s, {"shares", "threshold"}); });
         }});
  t.Add({.method = "GET",
         .path = "/v1/attestation",
         .access = Access::kAnyIdentity,
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .summary = "keyd's attestation evidence binding its public keys and the nonce",
         .query = {{{"name", "nonce"},
                    {"required", true},
                    {"description", "base64url, 16..64 bytes"}}},
         .handler = [keyd](const RouteContext& c) {
           auto it = c.req.query.find("nonce");
           if (it == c.req.query.end()) {
             return ProblemFromStatus(
                 Status::InvalidArgument("?nonce=<base64url, 16..64 bytes> is required"));
           }
           return KeydCall(keyd, {{"op", "attestation.evidence"}, {"nonce", it->second}},
                           [](const json& s) { return s["evidence"]; });
         }});
  t.Add({.method = "GET",
         .path = "/v1/keyd",
         .access = Access::kAnyIdentity,
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .summary = "keyd's current intake key and measurement",
         .handler = [keyd](const RouteContext&) {
           return KeydCall(keyd, {{"op", "status"}}, [](const json& s) {
             return Pick(s, {"intake_public_key", "measurement", "simulated", "sealed"});
           });
         }});
  t.Add({.method = "POST",
         .path = "/v1/tenant/rotate-key",
         .roles = {Role::kOperator},
         .summary = "A new tenant key version for the caller's tenant",
         .handler = [keyd](const RouteContext& c) {
           return KeydCall(keyd, {{"op", "tenant.rotate"}, {"tenant", c.caller->tenant}},
                           [](const json& s) {
                             return Pick(s, {"tenant", "key_version"});
                           });
         }});
}

StatusOr<uint16_t> ServeWhileSealed(const TlsServerConfig& tls, HttpsServerOptions options,
                                    keyd::KeyServiceClient* keyd, const sigset_t& sigs,
                                    const std::function<void(uint16_t port)>& on_listening) {
  // Only the key routes exist here; the sealed probe turns the rest of them into 503.
  RouteTable table;
  RegisterKeyRoutes(table, keyd);
  table.set_sealed_probe([keyd] { return keyd->Sealed(); });
  auto https = HttpsServer::Start(tls, options, [&table](const HttpRequest& r) {
    HttpResponse resp = table.Dispatch(r);
    if (resp.status == 404)
      return ProblemResponse(503, "Service unavailable", "keyd is sealed: toani operator unseal");
    return resp;
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
