#include "server/routes.h"

#include <algorithm>

#include "server/api.h"
#include "server/metrics.h"

namespace toani::server {
namespace {

using nlohmann::json;

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 1;  // paths start with '/'
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool IsParam(const std::string& seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}
bool IsRest(const std::string& seg) {
  return IsParam(seg) && seg.size() > 5 && seg.compare(seg.size() - 4, 4, "...}") == 0;
}
std::string ParamName(const std::string& seg) {
  std::string n = seg.substr(1, seg.size() - 2);
  if (n.size() > 3 && n.compare(n.size() - 3, 3, "...") == 0) n.resize(n.size() - 3);
  return n;
}

// Matches the split path `got` against the split pattern `pat`; fills params on success.
bool MatchPath(const std::vector<std::string>& pat, const std::vector<std::string>& got,
               std::map<std::string, std::string>* params) {
  for (size_t i = 0; i < pat.size(); ++i) {
    if (IsRest(pat[i])) {
      if (i >= got.size()) return false;
      std::string rest;
      for (size_t k = i; k < got.size(); ++k) {
        if (got[k].empty()) return false;
        rest += (k == i ? "" : "/") + got[k];
      }
      (*params)[ParamName(pat[i])] = rest;
      return true;
    }
    if (i >= got.size()) return false;
    if (IsParam(pat[i])) {
      if (got[i].empty()) return false;
      (*params)[ParamName(pat[i])] = got[i];
    } else if (pat[i] != got[i]) {
      return false;
    }
  }
  return pat.size() == got.size();
}

std::string RolesText(const std::set<Role>& roles) {
  std::string s;
  for (Role r : roles) s += (s.empty() ? "" : ", ") + std::string(RoleName(r));
  return s;
}

json ProblemSchemaRef() { return {{"$ref", "#/components/schemas/Problem"}}; }

}  // namespace

void RouteTable::Add(Route r) {
  TOANI_CHECK(!r.path.empty() && r.path[0] == '/');
  TOANI_CHECK(static_cast<bool>(r.handler));
  TOANI_CHECK(r.access != Access::kRoles || !r.roles.empty());
  auto segs = Segments(r.path);
  for (size_t i = 0; i < segs.size(); ++i) {
    TOANI_CHECK(!segs[i].empty());
    TOANI_CHECK(!IsRest(segs[i]) || i + 1 == segs.size());
  }
  TOANI_CHECK(r.tenancy != Tenancy::kPathTenant || r.path.find("{tenant}") != std::string::npos);
  for (const Route& o : routes_) TOANI_CHECK(!(o.method == r.method && o.path == r.path));
  size_t literals = 0;
  for (const auto& seg : segs) literals += IsParam(seg) ? 0 : 1;
  patterns_.push_back({segs, literals});
  Metrics::Global().Describe("toani_http_requests_total", "counter",
                             "HTTP requests by route template, method and status code");
  Metrics::Global().Describe("toani_http_request_duration_seconds", "histogram",
                             "time from request parsed to answer built, by route");
  Metrics::Global().Describe(
      "toani_decisions_total", "counter",
      "POST /v1/authorize answers by decision: allow, approval_required, deny, "
      "error (malformed requests and refused callers are not counted)");
  Metrics::Global().Describe("toani_executions_total", "counter",
                             "POST /v1/executions by outcome (finished includes connector errors)");
  Metrics::Global().Describe("toani_approval_requests_total", "counter",
                             "POSTs to approval routes by route and status code");
  routes_.push_back(std::move(r));
}

RouteTable::Match RouteTable::Find(const std::string& method, const std::string& path) const {
  Match m;
  if (path.empty() || path[0] != '/') return m;
  const std::vector<std::string> got = Segments(path);  // split once, not once per route
  // Literal segments win over parameters: "/v1/approvals/pending" before "/v1/approvals/{id}".
  size_t best_literals = 0;
  for (size_t i = 0; i < routes_.size(); ++i) {
    const Route& r = routes_[i];
    std::map<std::string, std::string> params;
    if (!MatchPath(patterns_[i].segments, got, &params)) continue;
    if (std::find(m.methods_on_path.begin(), m.methods_on_path.end(), r.method) ==
        m.methods_on_path.end())
      m.methods_on_path.push_back(r.method);
    if (r.method != method) continue;
    const size_t literals = patterns_[i].literals;
    if (m.route == nullptr || literals > best_literals) {
      m.route = &r;
      m.params = std::move(params);
      best_literals = literals;
    }
  }
  return m;
}

bool RouteTable::Allow(const std::string& key) const {
  if (rate_limit_.requests_per_second <= 0) return true;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> l(mu_);
  if (buckets_.size() > 100000) buckets_.clear();  // bounded memory under a flood of ids
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{rate_limit_.burst, now});
  Bucket& b = it->second;
  if (!fresh) {
    double dt = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(rate_limit_.burst, b.tokens + dt * rate_limit_.requests_per_second);
    b.at = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

HttpResponse RouteTable::Dispatch(const HttpRequest& req, bool mtls) const {
  const auto start = std::chrono::steady_clock::now();
  Match m = Find(req.method, req.path);
  std::string route_label = m.route != nullptr ? m.route->path : "unmatched";
  auto answer = [&](HttpResponse resp) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Metrics::Global().Inc(
        "toani_http_requests_total",
        {{"route", route_label}, {"method", req.method}, {"code", std::to_string(resp.status)}});
    Metrics::Global().Observe("toani_http_request_duration_seconds", {{"route", route_label}},
                              secs);
    // Business counters, read off the answers of the routes that make the decisions.
    // (toani_decisions_total is counted by the authorize handler, which knows the decision.)
    if (route_label == "/v1/executions" && req.method == "POST") {
      Metrics::Global().Inc("toani_executions_total",
                            {{"outcome", resp.status == 200 ? "finished" : "refused"}});
    } else if (route_label.rfind("/v1/approvals", 0) == 0 && req.method == "POST") {
      Metrics::Global().Inc("toani_approval_requests_total",
                            {{"route", route_label}, {"code", std::to_string(resp.status)}});
    }
    return resp;
  };
  if (m.route != nullptr && !mtls && m.route->access != Access::kPublic) m.route = nullptr;
  if (m.route == nullptr) {
    if (!m.methods_on_path.empty() && mtls) {
      std::string allow;
      for (const auto& x : m.methods_on_path) allow += (allow.empty() ? "" : ", ") + x;
      HttpResponse r = ProblemResponse(405, "Method not allowed",
                                       req.method + " is not supported on " + req.path);
      r.headers.emplace_back("Allow", allow);
      return answer(r);
    }
    return answer(ProblemResponse(404, "Not found", "no route " + req.path));
  }
  const Route& route = *m.route;

  // Identity: a verified client certificate with a well-formed SPIFFE id.
  std::optional<Caller> caller;
  if (req.peer.authenticated) {
    auto c = CallerFromPeer(req.peer);
    if (!c.ok()) {
      if (route.access != Access::kPublic) return answer(ProblemFromStatus(c.status()));
    } else {
      caller = std::move(c).value();
    }
  }
  if (route.access != Access::kPublic && !caller) {
    return answer(
        ProblemFromStatus(Status::Unauthenticated("a verified client certificate is required")));
  }
  if (route.access == Access::kRoles) {
    bool ok = false;
    for (Role r : route.roles) ok = ok || caller->Has(r);
    if (!ok) {
      return answer(ProblemFromStatus(Status::PermissionDenied(
          route.method + " " + route.path + " needs the role " + RolesText(route.roles))));
    }
  }
  if (route.tenancy == Tenancy::kPathTenant) {
    // Another tenant's resources do not exist for this caller (no existence oracle).
    if (!caller || m.params["tenant"] != caller->tenant)
      return answer(ProblemResponse(404, "Not found", "no route " + req.path));
  }
  if (!Allow(caller ? caller->spiffe_id
                    : "peer:" + req.peer.cert_sha256 + req.Header("x-forwarded-for"))) {
    HttpResponse r = ProblemResponse(
        429, "Too many requests", "the per-identity request rate limit is exceeded; retry later");
    r.headers.emplace_back("Retry-After", "1");
    return answer(r);
  }
  if (!route.while_sealed && sealed_ && sealed_()) {
    return answer(
        ProblemResponse(503, "Service unavailable",
                        "keyd is sealed: only /v1/sys/status, /v1/sys/unseal and /v1/attestation "
                        "answer until an operator unseals it (toani operator unseal)"));
  }
  json body = json::object();
  if (route.json_body) {
    if (req.Header("content-type").rfind("application/json", 0) != 0) {
      return answer(
          ProblemResponse(415, "Unsupported media type", "send Content-Type: application/json"));
    }
    body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded())
      return answer(ProblemResponse(400, "Bad request", "body is not valid JSON"));
    if (!body.is_object())
      return answer(ProblemResponse(400, "Bad request", "body must be a JSON object"));
  }
  RouteContext ctx{req, caller ? &*caller : nullptr, body, std::move(m.params)};
  return answer(route.handler(ctx));
}

json RouteTable::OpenApi() const {
  json paths = json::object();
  for (const Route& r : routes_) {
    std::string method = r.method;
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    json op = {{"summary", r.summary},
               {"operationId", method + r.path},
               {"x-toani-access", r.access == Access::kPublic        ? "public"
                                  : r.access == Access::kAnyIdentity ? "any-identity"
                                                                     : "roles"},
               {"x-toani-tenancy", r.tenancy == Tenancy::kGlobal         ? "global"
                                   : r.tenancy == Tenancy::kCallerTenant ? "caller-tenant"
                                                                         : "path-tenant"},
               {"x-toani-while-sealed", r.while_sealed}};
    json roles = json::array();
    for (Role x : r.roles) roles.push_back(RoleName(x));
    if (r.access == Access::kRoles) op["x-toani-roles"] = roles;
    op["security"] = r.access == Access::kPublic
                         ? json::array({json::object(), {{"mtls", json::array()}}})
                         : json::array({{{"mtls", json::array()}}});
    json params = json::array();
    for (const auto& s : Segments(r.path)) {
      if (IsParam(s))
        params.push_back({{"name", ParamName(s)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
    }
    for (const auto& q : r.query) {
      json p = {{"name", q.at("name")},
                {"in", "query"},
                {"required", q.value("required", false)},
                {"schema", q.value("schema", json{{"type", "string"}})}};
      if (q.contains("description")) p["description"] = q["description"];
      params.push_back(p);
    }
    if (!params.empty()) op["parameters"] = params;
    if (r.json_body) {
      op["requestBody"] = {{"required", true},
                           {"content",
                            {{"application/json",
                              {{"schema", r.request_schema.is_null() ? json{{"type", "object"}}
                                                                     : r.request_schema}}}}}};
    }
    json ok_schema = r.response_schema.is_null()
                         ? (r.success_type == "application/json" ? json{{"type", "object"}}
                                                                 : json{{"type", "string"}})
                         : r.response_schema;
    json responses = {
        {std::to_string(r.success_status),
         {{"description", "success"}, {"content", {{r.success_type, {{"schema", ok_schema}}}}}}}};
    auto problem = [&](int code, const char* why) {
      responses[std::to_string(code)] = {
          {"description", why},
          {"content", {{"application/problem+json", {{"schema", ProblemSchemaRef()}}}}}};
    };
    problem(400, "bad request");
    if (r.access != Access::kPublic) problem(401, "no verified client certificate");
    if (r.access == Access::kRoles) problem(403, "the caller lacks the role");
    problem(429, "per-identity rate limit");
    if (!r.while_sealed) problem(503, "keyd sealed or a dependency unavailable");
    op["responses"] = responses;
    paths[r.path][method] = op;
  }
  return {{"openapi", "3.1.0"},
          {"info",
           {{"title", "toani Control API"},
            {"version", "1"},
            {"description",
             "Agents act with credentials they never see. Every route needs a client "
             "certificate from the tenant CA (SPIFFE URI SAN) unless marked public; errors are "
             "application/problem+json (RFC 9457)."}}},
          {"paths", paths},
          {"components",
           {{"securitySchemes", {{"mtls", {{"type", "mutualTLS"}}}}},
            {"schemas",
             {{"Problem",
               {{"type", "object"},
                {"required", {"type", "title", "status"}},
                {"properties",
                 {{"type", {{"type", "string"}}},
                  {"title", {{"type", "string"}}},
                  {"status", {{"type", "integer"}}},
                  {"detail", {{"type", "string"}}}}}}}}}}}};
}

}  // namespace toani::server
