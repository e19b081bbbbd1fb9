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
#include "store/store.h"

namespace toani::server {

struct ApiDeps {
  store::Store* store = nullptr;
  audit::AuditLog* audit = nullptr;
  keyd::KeyServiceClient* keyd = nullptr;
  Executor* executor = nullptr;
  PolicyPlane* policy = nullptr;  // keys, policies, simulate, authorize, approvals
  nlohmann::json keyd_status;  // intake key and measurement, fetched at start
  Clock clock = SystemClock();
};

class Api {
 public:
  explicit Api(ApiDeps deps) : d_(std::move(deps)) {}
  HttpResponse Handle(const HttpRequest& req);  // thread-safe

 private:
  HttpResponse AddCredential(const Caller& c, const nlohmann::json& body);
  HttpResponse ListCredentials(const Caller& c);
  HttpResponse ExecuteAction(const Caller& c, const nlohmann::json& body);
  HttpResponse AuditRoot();
  HttpResponse AuditEntries(const HttpRequest& req);
  ApiDeps d_;
};

// Maps a Status to the HTTP problem the API answers with.
HttpResponse ProblemFromStatus(const Status& s);

// A JSON reply that is never cached (every API answer).
HttpResponse JsonResponse(int status, const nlohmann::json& body);

}  // namespace toani::server
