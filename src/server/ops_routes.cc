// Operations routes: /healthz, /readyz, /metrics and /v1/openapi.json.
#include <sodium.h>

#include "common/encoding.h"
#include "server/api.h"
#include "server/metrics.h"

namespace toani::server {
namespace {

using nlohmann::json;

// Each dependency: "ok" or why not. Ready only when every one is ok.
json ReadyChecks(const ApiDeps& d) {
  json checks = json::object();
  if (d.keyd != nullptr) {
    auto st = d.keyd->Call({{"op", "status"}});
    if (!st.ok()) {
      checks["keyd"] = st.status().message();
      checks["seal"] = "unknown";
    } else {
      checks["keyd"] = "ok";
      checks["seal"] = st->value("sealed", true) ? "sealed" : "ok";
    }
  }
  if (d.store != nullptr) {
    auto n = d.store->AuditSize();
    checks["store"] = n.ok() ? json("ok") : json(n.status().message());
  }
  if (d.replay != nullptr) {
    // A fresh random jti that expires at once: proves the store answers and writes.
    uint8_t rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    Status st =
        d.replay->ConsumeOnce("readyz-" + HexEncode(std::span<const uint8_t>(rnd, sizeof rnd)),
                              d.clock() + std::chrono::seconds(1));
    checks["replay_store"] = st.ok() ? json("ok") : json(st.message());
  }
  if (d.audit != nullptr) {
    auto fault = d.audit->Fault();
    checks["audit"] = fault ? json(*fault) : json("ok");
  }
  return checks;
}

}  // namespace

void RegisterOpsRoutes(RouteTable& t, const ApiDeps& deps) {
  const ApiDeps* d = &deps;
  const RouteTable* table = &t;
  t.Add({.method = "GET",
         .path = "/healthz",
         .access = Access::kPublic,
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .summary = "Liveness: the process answers",
         .handler = [](const RouteContext&) {
           return JsonResponse(200, {{"status", "ok"}});
         }});
  t.Add({.method = "GET",
         .path = "/readyz",
         .access = Access::kPublic,
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .summary = "Readiness: seal state, keyd, store, replay store and audit log",
         .handler = [d](const RouteContext&) {
           json checks = ReadyChecks(*d);
           bool ready = true;
           for (const auto& [k, v] : checks.items()) ready = ready && v == "ok";
           json body = {{"status", ready ? "ready" : "not ready"}, {"checks", checks}};
           if (d->audit != nullptr) body["audit_size"] = d->audit->size();
           // Informational: an empty pool only makes executions slower, never unready.
           if (d->executor != nullptr && d->executor->sandbox_pool() != nullptr) {
             const SandboxPoolStats s = d->executor->sandbox_pool()->Stats();
             body["sandbox_pool"] = {{"size", s.size}, {"ready", s.ready}};
           }
           return JsonResponse(ready ? 200 : 503, body);
         }});
  t.Add(
      {.method = "GET",
       .path = "/metrics",
       .roles = {Role::kOperator},
       .tenancy = Tenancy::kGlobal,
       .while_sealed = true,
       .summary = "Prometheus metrics (text exposition format 0.0.4)",
       .success_type = "text/plain",
       .handler = [d](const RouteContext&) {
         if (d->audit != nullptr) {
           Metrics::Global().Describe("toani_audit_log_size", "gauge", "entries in the audit log");
           Metrics::Global().Set("toani_audit_log_size", {}, static_cast<double>(d->audit->size()));
         }
         HttpResponse r;
         r.content_type = "text/plain; version=0.0.4; charset=utf-8";
         r.body = Metrics::Global().Render();
         r.headers.emplace_back("Cache-Control", "no-store");
         return r;
       }});
  t.Add({.method = "GET",
         .path = "/v1/openapi.json",
         .access = Access::kAnyIdentity,
         .tenancy = Tenancy::kGlobal,
         .while_sealed = true,
         .summary = "This API's OpenAPI 3.1 document, generated from the route table",
         .handler = [table](const RouteContext&) { return JsonResponse(200, table->OpenApi()); }});
}

}  // namespace toani::server
