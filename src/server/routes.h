// The route table: the one place where every HTTP route of the server is declared
// (method, path, who may call it, how it is scoped to a tenant, what it takes and
// answers). The same table drives dispatch, the RBAC check, the rate limit, the
// metrics and the OpenAPI 3.1 document at /v1/openapi.json, so a route cannot exist
// without being authorized and documented. docs/api.md "Adding a route" shows how.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/https_server.h"
#include "server/identity.h"

namespace toani::server {

// Who may call a route.
enum class Access {
  // No client certificate needed (e.g. /healthz, a webhook callback that the handler
  // authenticates itself by signature). These routes are also served on the optional
  // listener without client certificates; ctx.caller may be null.
  kPublic,
  // Any verified client certificate of any role (e.g. /v1/sys/status).
  kAnyIdentity,
  // A verified client certificate holding at least one of Route::roles.
  kRoles,
};

// How a route's data is scoped; the dispatcher enforces kPathTenant, the handler
// enforces kCallerTenant by reading and writing only ctx.caller->tenant.
enum class Tenancy {
  kGlobal,        // no tenant data (health, seal state, OpenAPI)
  kCallerTenant,  // only the caller's tenant's data
  kPathTenant,    // path has {tenant}; it must equal the caller's tenant (else 404)
};

struct RouteContext {
  const HttpRequest& req;
  const Caller* caller;        // null only on kPublic routes called without a certificate
  const nlohmann::json& body;  // the parsed JSON object for json_body routes, else {}
  std::map<std::string, std::string> path_params;  // {name} segments, raw (not decoded)
};

using RouteHandler = std::function<HttpResponse(const RouteContext&)>;

struct Route {
  std::string method{};  // "GET", "POST", ...
  // "/v1/approvals/{id}": a {name} segment matches one non-empty segment; a final
  // "{name...}" segment matches the rest of the path (one or more segments).
  std::string path{};
  Access access = Access::kRoles;
  std::set<Role> roles{};  // for kRoles: any one of these suffices
  Tenancy tenancy = Tenancy::kCallerTenant;
  bool while_sealed = false;  // answers while keyd is sealed (else 503)
  bool json_body = false;     // body must be a JSON object (Content-Type application/json)
  std::string summary{};      // one line, for OpenAPI and docs/api.md
  // OpenAPI fragments (optional): query parameters [{name, required, schema, description}],
  // the request body schema (json_body routes) and the success answer.
  nlohmann::json query = nlohmann::json::array();
  nlohmann::json request_schema{};  // null = {"type":"object"} for json_body routes
  int success_status = 200;
  std::string success_type = "application/json";
  nlohmann::json response_schema{};  // null = {"type":"object"} for JSON answers
  RouteHandler handler{};
};

// Per-identity request limiter (token bucket per SPIFFE id, or per peer for public routes).
struct RateLimit {
  double requests_per_second = 500;  // 0 = unlimited
  double burst = 1000;
};

class RouteTable {
 public:
  RouteTable() = default;
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;

  // Registers a route. Aborts (TOANI_CHECK) on a duplicate method+path, a malformed
  // path, kRoles without roles, kPathTenant without {tenant} or a missing handler:
  // those are programming errors found by the first test that builds the table.
  void Add(Route r);

  const std::vector<Route>& routes() const { return routes_; }

  void set_rate_limit(RateLimit rl) { rate_limit_ = rl; }
  // Returns true while keyd is sealed (every route but while_sealed ones answer 503).
  void set_sealed_probe(std::function<bool()> probe) { sealed_ = std::move(probe); }

  // Matches, authenticates, authorizes, rate-limits, parses the body and calls the
  // handler. `mtls` = the request came over the listener that requires client
  // certificates; on the other listener only kPublic routes exist. Thread-safe.
  // 404 for no such path, 405 (with Allow) for a known path and another method,
  // 401 without a usable identity, 403 without the role, 429 over the rate limit.
  HttpResponse Dispatch(const HttpRequest& req, bool mtls = true) const;

  // The OpenAPI 3.1 document of every registered route.
  nlohmann::json OpenApi() const;

 private:
  struct Match {
    const Route* route = nullptr;
    std::map<std::string, std::string> params;
    std::vector<std::string> methods_on_path;  // for 405
  };
  Match Find(const std::string& method, const std::string& path) const;
  bool Allow(const std::string& key) const;  // rate limit

  std::vector<Route> routes_;
  struct Pattern {  // routes_[i].path split into segments once, at Add
    std::vector<std::string> segments;
    size_t literals = 0;  // non-parameter segments: more literals win a tie
  };
  std::vector<Pattern> patterns_;
  RateLimit rate_limit_;
  std::function<bool()> sealed_;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace toani::server
