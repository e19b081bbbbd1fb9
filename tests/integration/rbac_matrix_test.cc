// The role x route matrix through a real `toani server --dev` over mTLS: every route,
// every role, the expected allow or deny, written out here independently of the server's
// route table. The served OpenAPI document must list exactly the routes of this matrix
// (a route added to the server without a row here fails the test), every route must be
// in docs/api.md, and every route of the document must exist on the server.
//
// Adding a route: add a row to kMatrix (docs/api.md "Adding a route").
#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/encoding.h"
#include "server/pki.h"
#include "server_harness.h"
#include "signed_policy.h"

namespace toani::testing {
namespace {

using nlohmann::json;

// Who may call what. "public": no certificate needed; "any": any identity; otherwise
// the roles that may call it.
const std::map<std::string, std::set<std::string>> kMatrix = {
    {"GET /healthz", {"public"}},
    {"GET /readyz", {"public"}},
    {"GET /metrics", {"operator"}},
    {"GET /v1/openapi.json", {"any"}},
    {"GET /v1/sys/status", {"any"}},
    {"POST /v1/sys/init", {"operator"}},
    {"POST /v1/sys/unseal", {"operator"}},
    {"POST /v1/sys/rekey", {"operator"}},
    {"GET /v1/attestation", {"any"}},
    {"GET /v1/keyd", {"any"}},
    {"POST /v1/tenant/rotate-key", {"operator"}},
    {"POST /v1/credentials", {"credential-admin"}},
    {"GET /v1/credentials", {"credential-admin"}},
    {"POST /v1/policies", {"policy-admin"}},
    {"GET /v1/policies", {"policy-admin", "approver", "auditor"}},
    {"POST /v1/policies/simulate", {"policy-admin"}},
    {"GET /v1/policies/{policy_id}", {"policy-admin", "approver", "auditor"}},
    {"GET /v1/policies/{policy_id}/history", {"policy-admin", "approver", "auditor"}},
    {"POST /v1/policy-keys", {"operator"}},
    {"GET /v1/policy-keys", {"operator", "policy-admin", "auditor"}},
    {"POST /v1/policy-keys/{key_id}/revoke", {"operator"}},
    {"GET /v1/approvals", {"approver", "auditor"}},
    {"GET /v1/approvals/{id}", {"approver", "auditor", "agent"}},
    {"POST /v1/approvals/{id}/approve", {"approver"}},
    {"POST /v1/approvals/{id}/deny", {"approver"}},
    {"POST /v1/approvals/{id}/token", {"agent"}},
    {"POST /v1/authorize", {"agent"}},
    {"POST /v1/executions", {"agent"}},
    {"GET /v1/executions/{execution_id}", {"agent"}},
    {"POST /v1/callbacks/{execution_id}", {"public"}},
    {"GET /v1/audit/root", {"any"}},
    {"GET /v1/audit/entries", {"auditor"}},
    {"GET /v1/audit/checkpoint", {"auditor"}},
    {"GET /v1/audit/key", {"auditor"}},
    {"GET /v1/audit/tile/{tile...}", {"auditor"}},
    {"GET /v1/audit/proof", {"auditor"}},
    {"GET /v1/audit/consistency", {"auditor"}},
    {"GET /v1/audit/export", {"auditor"}},
    {"POST /mcp", {"agent"}},
};

const std::vector<std::string> kHumanRoles = {"operator", "credential-admin", "policy-admin",
                                              "approver", "auditor"};

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A concrete request path for a route template.
std::string Concrete(const std::string& templ) {
  std::string out;
  size_t i = 0;
  while (i < templ.size()) {
    if (templ[i] == '{') {
      size_t j = templ.find('}', i);
      out += templ.compare(i, 7, "{tenant") == 0 ? "dev" : "x";
      i = j + 1;
    } else {
      out += templ[i++];
    }
  }
  return out;
}

class RbacMatrixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerHarness();
    ASSERT_TRUE(server_->Start().ok()) << ReadFileOrEmpty(server_->log_path());
    const std::string pki = server_->data_dir() + "/pki";
    auto issue = [&](const std::string& who, const std::string& uri,
                     const std::vector<std::string>& roles) {
      auto pair = IssueClientCertPem(pki + "/ca.pem", pki + "/ca-key.pem", who, uri, roles);
      ASSERT_TRUE(pair.ok()) << pair.status().message();
      std::ofstream(pki + "/" + who + ".pem") << pair->first;
      std::ofstream(pki + "/" + who + "-key.pem") << pair->second;
    };
    for (const auto& r : kHumanRoles) issue("r-" + r, "spiffe://dev/user/" + r + "-user", {r});
    issue("r-agent", "spiffe://dev/agent/matrix-agent", {});
    issue("r-none", "spiffe://dev/user/nobody", {});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static ServerHarness* server_;
};
ServerHarness* RbacMatrixTest::server_ = nullptr;

TEST_F(RbacMatrixTest, OpenApiListsExactlyTheMatrixRoutes) {
  long code = 0;
  auto doc = server_->CallJson("admin", "GET", "/v1/openapi.json", nullptr, &code);
  ASSERT_TRUE(doc.ok());
  ASSERT_EQ(code, 200);
  EXPECT_EQ((*doc)["openapi"], "3.1.0");
  std::set<std::string> documented;
  for (const auto& [path, ops] : (*doc)["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      std::string m = method;
      for (char& ch : m) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      documented.insert(m + " " + path);
      EXPECT_FALSE(op.value("summary", "").empty()) << m << " " << path;
      EXPECT_TRUE(op.contains("responses")) << m << " " << path;
      EXPECT_TRUE(op.contains("security")) << m << " " << path;
      // Every {param} of the path is declared.
      for (size_t i = path.find('{'); i != std::string::npos; i = path.find('{', i + 1)) {
        std::string name = path.substr(i + 1, path.find('}', i) - i - 1);
        if (name.size() > 3 && name.compare(name.size() - 3, 3, "...") == 0)
          name.resize(name.size() - 3);
        bool declared = false;
        for (const auto& p : op.value("parameters", json::array()))
          declared = declared || (p["in"] == "path" && p["name"] == name);
        EXPECT_TRUE(declared) << m << " " << path << " does not declare {" << name << "}";
      }
      // The document's roles are the matrix's roles.
      auto row = kMatrix.find(m + " " + path);
      if (row != kMatrix.end() && op.contains("x-toani-roles")) {
        std::set<std::string> roles(op["x-toani-roles"].begin(), op["x-toani-roles"].end());
        EXPECT_EQ(roles, row->second) << m << " " << path;
      }
    }
  }
  std::set<std::string> expected;
  for (const auto& [route, _] : kMatrix) expected.insert(route);
  EXPECT_EQ(documented, expected) << "the served OpenAPI document and the role matrix differ";
}

TEST_F(RbacMatrixTest, EveryRouteIsInDocsApiMd) {
  const std::string doc = ReadAll(std::string(TOANI_SOURCE_DIR) + "/docs/api.md");
  ASSERT_FALSE(doc.empty());
  for (const auto& [route, _] : kMatrix) {
    EXPECT_NE(doc.find("`" + route), std::string::npos) << route << " is not in docs/api.md";
  }
}

TEST_F(RbacMatrixTest, EveryRoleAgainstEveryRoute) {
  std::vector<std::pair<std::string, std::string>> ids;  // cert name, role
  for (const auto& r : kHumanRoles) ids.push_back({"r-" + r, r});
  ids.push_back({"r-agent", "agent"});
  ids.push_back({"r-none", ""});
  int checked = 0;
  for (const auto& [route, allowed] : kMatrix) {
    const std::string method = route.substr(0, route.find(' '));
    const std::string path = Concrete(route.substr(route.find(' ') + 1));
    for (const auto& [cert, role] : ids) {
      bool want = allowed.count("public") > 0 || allowed.count("any") > 0 ||
                  (!role.empty() && allowed.count(role) > 0);
      auto r = server_->Call(cert, method, path, method == "POST" ? "{}" : "");
      ASSERT_TRUE(r.ok()) << route << " as " << cert << ": " << r.status().message();
      json body = json::parse(r->body, nullptr, false);
      std::string detail = body.is_object() ? body.value("detail", "") : "";
      const bool role_denied =
          r->status == 403 && detail.find("needs the role") != std::string::npos;
      if (want) {
        EXPECT_FALSE(role_denied) << route << " as " << cert << " (" << role << ")";
        EXPECT_NE(r->status, 401) << route << " as " << cert;
        EXPECT_NE(r->status, 405) << route << " as " << cert;
        EXPECT_EQ(detail.rfind("no route", 0), std::string::npos) << route << " does not exist";
      } else {
        EXPECT_TRUE(role_denied) << route << " as " << cert << " (" << role << ") got " << r->status
                                 << " " << r->body;
        EXPECT_EQ(r->content_type, "application/problem+json");
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(kMatrix.size() * ids.size()));
}

TEST_F(RbacMatrixTest, UnknownRoutesAndMethods) {
  auto r = server_->Call("admin", "GET", "/v1/nope", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->content_type, "application/problem+json");
  r = server_->Call("admin", "DELETE", "/v1/credentials", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  // A body that is not JSON never reaches a handler.
  r = server_->Call("r-credential-admin", "POST", "/v1/credentials", "{not json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  r = server_->Call("r-credential-admin", "POST", "/v1/credentials", "{}", "text/plain");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 415);
}

TEST_F(RbacMatrixTest, AuditorSeesOnlyItsTenantsEntries) {
  // The dev admin applies nothing here; the auditor's entries all carry tenant "dev".
  long code = 0;
  auto entries = server_->CallJson("r-auditor", "GET", "/v1/audit/entries", nullptr, &code);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(code, 200);
  for (const auto& e : (*entries)["entries"]) EXPECT_EQ(e.value("tenant", ""), "dev");
}

}  // namespace
}  // namespace toani::testing

namespace toani::testing {
namespace {

TEST_F(RbacMatrixTest, ReadyzReportsEachDependencyAndMetricsAreExposed) {
  long code = 0;
  auto ready = server_->CallJson("r-none", "GET", "/readyz", nullptr, &code);
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(code, 200) << ready->dump();
  for (const char* k : {"keyd", "seal", "store", "replay_store", "audit"})
    EXPECT_EQ((*ready)["checks"][k], "ok") << k << ": " << ready->dump();
  auto m = server_->Call("r-operator", "GET", "/metrics", "");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->content_type.rfind("text/plain", 0), 0u);
  for (const char* name : {"# TYPE toani_http_requests_total counter",
                           "toani_http_request_duration_seconds_bucket{", "toani_audit_log_size "})
    EXPECT_NE(m->body.find(name), std::string::npos) << name;
}

// The value of one series in a Prometheus text exposition (0 when absent).
double Sample(const std::string& text, const std::string& series) {
  for (size_t at = text.find(series + " "); at != std::string::npos;
       at = text.find(series + " ", at + 1)) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
  }
  return 0;
}

// toani_decisions_total{decision} counts what each well-formed authorize was told, read
// back through GET /metrics: allow, approval_required, deny (unknown action, parameters
// the schema refuses), and nothing for malformed requests or callers without the role.
TEST_F(RbacMatrixTest, DecisionsAreCountedByOutcomeInMetrics) {
  ASSERT_GE(sodium_init(), 0);
  auto keyd = server_->CallJson("admin", "GET", "/v1/keyd");
  ASSERT_TRUE(keyd.ok());
  auto pk = Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
  ASSERT_TRUE(pk.ok());
  const std::string secret = "sk_metrics_test_value";
  Bytes sealed(secret.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), AsBytes(secret).data(), secret.size(), pk->data());
  long code = 0;
  auto cred = server_->CallJson(
      "admin", "POST", "/v1/credentials",
      {{"name", "m"}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}}, &code);
  ASSERT_EQ(code, 201) << cred->dump();
  auto action = [&](bool approval) {
    json a = {{"agents", {"matrix-agent"}},
              {"connector", "http"},
              {"credential", (*cred)["id"]},
              {"request", {{"url", "https://bank.example/x/{{n}}"}}},
              {"params",
               {{"type", "object"},
                {"additionalProperties", false},
                {"required", {"n"}},
                {"properties", {{"n", {{"type", "integer"}, {"minimum", 0}}}}}}},
              {"egress", {{{"host", "bank.example"}}}}};
    if (approval) a["approval"] = {{"approvers", 1}, {"ttl_seconds", 600}};
    return a;
  };
  PolicySigner signer(*server_);
  auto applied = signer.Apply({{"policy_id", "metrics"},
                               {"version", 1},
                               {"actions", {{"m.look", action(false)}, {"m.pay", action(true)}}}},
                              &code);
  ASSERT_TRUE(applied.ok());
  ASSERT_EQ(code, 201) << applied->dump();

  auto metrics = [&] {
    auto m = server_->Call("r-operator", "GET", "/metrics", "");
    EXPECT_TRUE(m.ok() && m->status == 200);
    return m.ok() ? m->body : std::string();
  };
  auto count = [](const std::string& text, const char* decision) {
    return Sample(text, std::string("toani_decisions_total{decision=\"") + decision + "\"}");
  };
  const std::string before = metrics();
  auto authorize = [&](const std::string& who, const std::string& body) {
    auto r = server_->Call(who, "POST", "/v1/authorize", body);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->status : 0L;
  };
  EXPECT_EQ(authorize("r-agent", R"({"action":"m.look","params":{"n":1}})"), 200);
  EXPECT_EQ(authorize("r-agent", R"({"action":"m.look","params":{"n":2}})"), 200);
  EXPECT_EQ(authorize("r-agent", R"({"action":"m.pay","params":{"n":3}})"), 202);
  EXPECT_EQ(authorize("r-agent", R"({"action":"m.look","params":{"n":-1}})"), 403);
  EXPECT_EQ(authorize("r-agent", R"({"action":"m.nope","params":{}})"), 404);
  EXPECT_EQ(authorize("r-agent", R"({"action":"m.look"})"), 400);                      // malformed
  EXPECT_EQ(authorize("r-operator", R"({"action":"m.look","params":{"n":1}})"), 403);  // role
  const std::string after = metrics();
  EXPECT_NE(after.find("# TYPE toani_decisions_total counter"), std::string::npos);
  EXPECT_EQ(count(after, "allow") - count(before, "allow"), 2) << after;
  EXPECT_EQ(count(after, "approval_required") - count(before, "approval_required"), 1);
  EXPECT_EQ(count(after, "deny") - count(before, "deny"), 2);
  EXPECT_EQ(count(after, "error") - count(before, "error"), 0);
}

}  // namespace
}  // namespace toani::testing
