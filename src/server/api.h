// Api: the /v1 routes. One handler per resource; every error is
// application/problem+json; a request that fails validation changes nothing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "audit/log.h"
#include "keyd/client.h"
#include "server/executor.h"
#include "server/https_server.h"
#include "server/identity.h"
#include "server/policy_plane.h"
#include "server/routes.h"
#include "store/store.h"

namespace toani::server {

struct ApiDeps {
  store::Store* store = nullptr;
  store::ReplayStore* replay = nullptr;  // probed by /readyz (optional)
  audit::AuditLog* audit = nullptr;
  keyd::KeyServiceClient* keyd = nullptr;
  Executor* executor = nullptr;
  PolicyPlane* policy = nullptr;  // keys, policies, simulate, authorize, approvals (issue 5)
  nlohmann::json keyd_status;  // intake key and measurement, fetched at start
  std::vector<std::string> mcp_allowed_origins;  // Origin values /mcp accepts
  Clock clock = SystemClock();
};

// Owns the route table (server/routes.h) and registers every plane's routes in it.
class Api {
 public:
  explicit Api(ApiDeps deps);
  // `mtls`: the request came over the listener that requires client certificates.
  HttpResponse Handle(const HttpRequest& req, bool mtls = true) const;  // thread-safe
  RouteTable& table() { return table_; }
  const RouteTable& table() const { return table_; }

 private:
  HttpResponse AddCredential(const Caller& c, const nlohmann::json& body);
  HttpResponse ListCredentials(const Caller& c);
  HttpResponse ExecuteAction(const Caller& c, const nlohmann::json& body);
  HttpResponse Callback(const HttpRequest& req, const std::string& execution_id);
  HttpResponse AuditRoot();
  HttpResponse AuditEntries(const Caller& c, const HttpRequest& req);
  void RegisterCoreRoutes();
  ApiDeps d_;
  RouteTable table_;
};

// Maps a Status to the HTTP problem the API answers with.
HttpResponse ProblemFromStatus(const Status& s);

// A JSON reply that is never cached (every API answer).
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// Route registration of each plane (docs/api.md "Adding a route").
void RegisterOpsRoutes(RouteTable& t, const ApiDeps& d);    // ops_routes.cc
void RegisterKeyRoutes(RouteTable& t, keyd::KeyServiceClient* keyd);  // key_routes.cc
void RegisterAuditRoutes(RouteTable& t, const ApiDeps& d);  // audit_routes.cc

}  // namespace toani::server
