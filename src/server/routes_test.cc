// The route table on its own: matching, 404/405, roles, path tenancy, the listener
// without client certificates, the per-identity rate limit, the sealed gate, OpenAPI.
#include "server/routes.h"

#include <gtest/gtest.h>

#include "server/api.h"

namespace toani::server {
namespace {

using nlohmann::json;

HttpRequest Req(const std::string& method, const std::string& path, const std::string& who,
                std::vector<std::string> roles = {}) {
  HttpRequest r;
  r.method = method;
  r.path = path;
  r.target = path;
  if (!who.empty()) {
    r.peer.authenticated = true;
    r.peer.uri_san = who;
    r.peer.roles = std::move(roles);
    r.peer.cert_sha256 = who;
  }
  return r;
}

HttpResponse Echo(const RouteContext& c) {
  json p = json::object();
  for (const auto& [k, v] : c.path_params) p[k] = v;
  return JsonResponse(200, {{"params", p}, {"caller", c.caller ? c.caller->spiffe_id : ""}});
}

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_.Add({.method = "GET",
            .path = "/pub",
            .access = Access::kPublic,
            .tenancy = Tenancy::kGlobal,
            .summary = "public",
            .handler = Echo});
    t_.Add({.method = "GET",
            .path = "/v1/things/{id}",
            .roles = {Role::kAuditor},
            .summary = "a thing",
            .handler = Echo});
    t_.Add({.method = "GET",
            .path = "/v1/things/special",
            .roles = {Role::kAuditor},
            .summary = "literal beats parameter",
            .handler = Echo});
    t_.Add({.method = "POST",
            .path = "/v1/tenants/{tenant}/x",
            .roles = {Role::kOperator},
            .tenancy = Tenancy::kPathTenant,
            .summary = "tenant path",
            .handler = Echo});
    t_.Add({.method = "GET",
            .path = "/files/{rest...}",
            .access = Access::kAnyIdentity,
            .summary = "rest",
            .handler = Echo});
  }
  RouteTable t_;
};

TEST_F(RoutesTest, MatchingAndMethods) {
  auto r = t_.Dispatch(Req("GET", "/v1/things/42", "spiffe://t/user/a", {"auditor"}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["params"]["id"], "42");
  r = t_.Dispatch(Req("GET", "/v1/things/special", "spiffe://t/user/a", {"auditor"}));
  EXPECT_EQ(json::parse(r.body)["params"].size(), 0u);
  r = t_.Dispatch(Req("GET", "/files/a/b/c", "spiffe://t/agent/x"));
  EXPECT_EQ(json::parse(r.body)["params"]["rest"], "a/b/c");
  EXPECT_EQ(t_.Dispatch(Req("GET", "/files/a//c", "spiffe://t/agent/x")).status, 404);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things", "spiffe://t/user/a", {"auditor"})).status, 404);
  r = t_.Dispatch(Req("DELETE", "/v1/things/1", "spiffe://t/user/a", {"auditor"}));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.content_type, "application/problem+json");
}

TEST_F(RoutesTest, RolesAndIdentities) {
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "")).status, 401);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/user/a")).status, 403);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/agent/a")).status, 403);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/user/a", {"operator"})).status, 403);
  // A user certificate naming the agent role or an unknown role is not an identity.
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/user/a", {"agent"})).status, 401);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/user/a", {"root"})).status, 401);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "https://t/user/a", {"auditor"})).status, 401);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/pub", "")).status, 200);
}

TEST_F(RoutesTest, PathTenantMustBeTheCallers) {
  auto op = [](const std::string& path) {
    return Req("POST", path, "spiffe://acme/user/o", {"operator"});
  };
  EXPECT_EQ(t_.Dispatch(op("/v1/tenants/acme/x")).status, 200);
  EXPECT_EQ(t_.Dispatch(op("/v1/tenants/other/x")).status, 404);
}

TEST_F(RoutesTest, ListenerWithoutClientCertsServesOnlyPublicRoutes) {
  EXPECT_EQ(t_.Dispatch(Req("GET", "/pub", ""), /*mtls=*/false).status, 200);
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/user/a", {"auditor"}), false).status,
            404);
}

TEST_F(RoutesTest, RateLimitPerIdentity) {
  t_.set_rate_limit({/*requests_per_second=*/0.001, /*burst=*/3});
  auto a = Req("GET", "/v1/things/1", "spiffe://t/user/a", {"auditor"});
  auto b = Req("GET", "/v1/things/1", "spiffe://t/user/b", {"auditor"});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(t_.Dispatch(a).status, 200);
  auto limited = t_.Dispatch(a);
  EXPECT_EQ(limited.status, 429);
  bool retry_after = false;
  for (const auto& [k, v] : limited.headers) retry_after = retry_after || k == "Retry-After";
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(t_.Dispatch(b).status, 200);  // another identity has its own bucket
}

TEST_F(RoutesTest, SealedGate) {
  bool sealed = true;
  t_.set_sealed_probe([&] { return sealed; });
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/user/a", {"auditor"})).status, 503);
  sealed = false;
  EXPECT_EQ(t_.Dispatch(Req("GET", "/v1/things/1", "spiffe://t/user/a", {"auditor"})).status, 200);
}

TEST_F(RoutesTest, OpenApiHasEveryRoute) {
  json doc = t_.OpenApi();
  EXPECT_EQ(doc["openapi"], "3.1.0");
  size_t ops = 0;
  for (const auto& [path, methods] : doc["paths"].items()) ops += methods.size();
  EXPECT_EQ(ops, t_.routes().size());
  EXPECT_EQ(doc["paths"]["/v1/things/{id}"]["get"]["x-toani-roles"], json::array({"auditor"}));
  EXPECT_EQ(doc["paths"]["/files/{rest...}"]["get"]["parameters"][0]["name"], "rest");
}

}  // namespace
}  // namespace toani::server
