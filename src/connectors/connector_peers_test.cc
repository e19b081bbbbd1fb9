// The connectors in their real sandbox (bwrap + seccomp + egress proxy) against real
// peers started by the test (tests/peers/targets.js): an echo-everything target, the
// injection styles, redirects, a form endpoint, and OAuth 2 with oauth2-mock-server.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "../../tests/peers/node_peer.h"
#include "common/encoding.h"
#include "sandbox/egress_proxy.h"
#include "sandbox/sandbox_runner.h"

namespace toani {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

using nlohmann::json;
using std::chrono::milliseconds;

// Secrets the peers know (they check them; they never see how they are stored).
const std::string kApiKey = "sk_test_Zq8xN3pL0vR7wE2tY5uI9oA1";  // a credential-shaped key
const std::string kPassword = "p@ss w/rd+?&=\"x\"~ünï";          // every encoding differs
const std::string kUser = "alice.legacy";

std::vector<std::string> Encodings(const std::string& v) {
  std::string hex = HexEncode(AsBytes(v));
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string b64 = Base64Encode(AsBytes(v));
  std::string b64np = b64;
  while (!b64np.empty() && b64np.back() == '=') b64np.pop_back();
  auto pct = [&](bool lower, bool plus) {
    std::string out;
    const char* d = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    for (unsigned char c : v) {
      if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else if (plus && c == ' ') {
        out.push_back('+');
      } else {
        out += {'%', d[c >> 4], d[c & 15]};
      }
    }
    return out;
  };
  std::string js = json(v).dump();
  js = js.substr(1, js.size() - 2);
  std::string js2 = json(js).dump();
  js2 = js2.substr(1, js2.size() - 2);
  std::string html;
  for (char c : v)
    html += c == '&' ? "&amp;" : c == '"' ? "&quot;" : c == '<' ? "&lt;" : std::string(1, c);
  std::string tilde = pct(false, true);  // URLSearchParams also encodes '~'
  for (size_t at; (at = tilde.find('~')) != std::string::npos;) tilde.replace(at, 1, "%7E");
  return {v,
          b64,
          b64np,
          Base64UrlEncode(AsBytes(v)),
          hex,
          upper,
          pct(false, false),
          pct(true, false),
          pct(false, true),
          tilde,
          js,
          js2,
          html};
}

class ConnectorPeersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/toani-peers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=toani-peers -addext 'subjectAltName=DNS:*.toani.test' -keyout " +
        dir_ + "/key.pem -out " + dir_ + "/cert.pem 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ::chmod((dir_ + "/cert.pem").c_str(), 0644);
    peer_ = new testing::NodePeer(dir_, {{"cert", dir_ + "/cert.pem"},
                                         {"key", dir_ + "/key.pem"},
                                         {"secrets",
                                          {{"api_key", kApiKey},
                                           {"username", kUser},
                                           {"password", kPassword},
                                           {"client_id", "toani-client"},
                                           {"client_secret", "cs-9f8e7d6c5b4a"},
                                           {"refresh_token", "rt-initial-0001"}}}});
    ASSERT_TRUE(peer_->ok()) << "tests/peers/targets.js did not start (npm ci in tests/peers?)";
  }
  static void TearDownTestSuite() {
    delete peer_;
    peer_ = nullptr;
    std::filesystem::remove_all(dir_);
  }

  static std::string Url(const std::string& host, const std::string& path) {
    return "https://" + host + ".toani.test:" + std::to_string(peer_->port()) + path;
  }

  struct Run {
    json result;
    std::string everything;  // every byte the sandbox sent out, stdout and stderr
    std::vector<std::string> proxy_log;
  };

  // One execution: a fresh sandbox and proxy allowing `allowed` hosts (*.toani.test
  // names on the peer's ports), the credential sealed to the hello key.
  Run Execute(json job, const std::string& credential, std::vector<std::string> allowed,
              std::string* reseal_secret_key = nullptr, bool browser = false) {
    Run run;
    std::vector<EgressRule> rules;
    for (const std::string& h : allowed) {
      rules.push_back({h + ".toani.test", peer_->port()});
      rules.push_back({h + ".toani.test", peer_->oauth_port()});
    }
    const std::string sock = dir_ + "/egress-" + std::to_string(++n_) + ".sock";
    auto proxy = EgressProxy::Start(sock, rules, {{"*.toani.test", "127.0.0.1"}});
    EXPECT_TRUE(proxy.ok()) << proxy.status().ToString();
    if (!proxy.ok()) return run;
    SandboxSpec spec;
    spec.connector_path = TOANI_CONNECTOR_PATH;
    spec.egress_socket_host_path = sock;
    spec.ro_binds = {{dir_ + "/cert.pem", "/run/toani/ca.pem"}};
    spec.wall_timeout = milliseconds(60000);
    if (kSanitized) spec.address_space_bytes = RLIM_INFINITY;
    if (browser) {  // what the executor gives a browser execution (ApplyBrowserSandbox)
      spec.seccomp = SeccompProfile::kBrowser;
      spec.memory_bytes = 1536ull << 20;
      spec.max_pids = 512;
      spec.max_processes = 4096;
      spec.address_space_bytes = RLIM_INFINITY;
      spec.tmpfs_bytes = 256ull << 20;
      spec.wall_timeout = milliseconds(120000);
      if (std::filesystem::exists("/etc/fonts"))
        spec.ro_binds.push_back({"/etc/fonts", "/etc/fonts"});
    }
    auto proc = MakeBwrapRunner()->Start(spec);
    EXPECT_TRUE(proc.ok()) << proc.status().ToString();
    if (!proc.ok()) return run;
    SandboxProcess& p = **proc;
    auto hello_line = p.ReadLine(milliseconds(20000));
    EXPECT_TRUE(hello_line.ok()) << p.Stderr();
    if (!hello_line.ok()) return run;
    auto pk = Base64UrlDecodeStrict(json::parse(*hello_line)["public_key"].get<std::string>());
    EXPECT_TRUE(pk.ok());
    if (!pk.ok()) return run;
    Bytes sealed(crypto_box_SEALBYTES + credential.size());
    crypto_box_seal(sealed.data(), AsBytes(credential).data(), credential.size(), pk->data());
    if (reseal_secret_key != nullptr) {  // the test plays keyd: its own intake key pair
      Bytes kpk(crypto_box_PUBLICKEYBYTES), ksk(crypto_box_SECRETKEYBYTES);
      crypto_box_keypair(kpk.data(), ksk.data());
      job["reseal_public_key"] = Base64UrlEncode(kpk);
      *reseal_secret_key = ToString(ksk) + ToString(kpk);
    }
    job["type"] = "job";
    job["sealed_credential"] = Base64UrlEncode(sealed);
    job["proxy_socket"] = "/run/toani/egress.sock";
    job["ca_file"] = "/run/toani/ca.pem";
    job["limits"] = {{"max_response_bytes", 1 << 20}, {"timeout_ms", 20000}};
    EXPECT_TRUE(p.WriteLine(job.dump()).ok());
    auto result_line = p.ReadLine(milliseconds(browser ? 110000 : 50000));
    EXPECT_TRUE(result_line.ok()) << result_line.status().ToString() << "\n" << p.Stderr();
    (void)p.Wait();
    run.everything = *hello_line + "\n" + (result_line.ok() ? *result_line : "") + p.Stderr();
    if (browser && std::getenv("TOANI_DEBUG_BROWSER") != nullptr) {
      std::fprintf(stderr, "result: %s\nstderr: %s\n",
                   result_line.ok() ? result_line->c_str() : "-", p.Stderr().c_str());
    }
    if (result_line.ok()) {
      run.result = json::parse(*result_line);
      // And the decoded strings, so an escaped form cannot hide behind JSON escaping.
      for (const char* k : {"body", "error", "content_type"}) {
        if (run.result.contains(k)) run.everything += "\n" + run.result[k].get<std::string>();
      }
      for (const json& h : run.result.value("headers", json::array())) {
        run.everything += "\n" + h[0].get<std::string>() + ": " + h[1].get<std::string>();
      }
      const json extracted = run.result.value("extracted", json::object());
      for (const auto& [k, v] : extracted.items()) {
        run.everything += "\n" + v.get<std::string>();
      }
    }
    run.proxy_log = (*proxy)->Log();
    return run;
  }

  static json HttpJob(const std::string& method, const std::string& url, json inject) {
    return {{"connector", "http"},
            {"request", {{"method", method}, {"url", url}, {"headers", json::array()}}},
            {"inject", std::move(inject)}};
  }

  static void ExpectNoSecret(const std::string& text, const std::string& secret) {
    for (const std::string& form : Encodings(secret)) {
      EXPECT_EQ(text.find(form), std::string::npos) << "found " << form << " in:\n" << text;
    }
  }

  static inline std::string dir_;
  static inline testing::NodePeer* peer_ = nullptr;
  static inline int n_ = 0;
};

TEST_F(ConnectorPeersTest, HeaderQueryAndBasicInjection) {
  struct Case {
    json inject;
    std::string seen;
  } cases[] = {
      {{{"kind", "header"}, {"name", "X-Api-Key"}}, "header:x-api-key:api_key"},
      {{{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}},
       "header:authorization:api_key"},
      {{{"kind", "query"}, {"name", "api_key"}}, "query:api_key:api_key"},
      {{{"kind", "basic"}, {"username", "svc"}}, "basic:api_key"},
  };
  for (const Case& c : cases) {
    Run run = Execute(HttpJob("GET", Url("api", "/check?x=1"), c.inject), kApiKey, {"api"});
    ASSERT_TRUE(run.result.value("ok", false)) << run.result.dump();
    EXPECT_EQ(run.result["status"], 200) << c.inject.dump() << run.result.dump();
    json body = json::parse(run.result["body"].get<std::string>());
    EXPECT_NE(std::find(body["seen_in"].begin(), body["seen_in"].end(), c.seen),
              body["seen_in"].end())
        << body.dump();
    ExpectNoSecret(run.everything, kApiKey);
  }
  // Without a credential the peer refuses: the checks above are meaningful.
  Run none = Execute(HttpJob("GET", Url("api", "/check"), {{"kind", "none"}}), kApiKey, {"api"});
  EXPECT_EQ(none.result["status"], 401);
}

TEST_F(ConnectorPeersTest, EchoOfEveryEncodingLeavesNothing) {
  // The credential goes out three ways at once; the target reflects every value it got
  // in raw, base64, base64url, hex, URL and JSON form, in its body and its headers.
  const std::string cred = json{{"api_key", kApiKey}, {"password", kPassword}}.dump();
  json job = HttpJob("POST", Url("echo", "/echo?q=1"),
                     {{"kind", "query"}, {"name", "key"}, {"field", "api_key"}});
  job["connector"] = "form";
  job["form"] = {{"encoding", "urlencoded"},
                 {"fields",
                  {{{"name", "password"}, {"credential_field", "password"}},
                   {{"name", "memo"}, {"value", "hello"}}}}};
  Run run = Execute(job, cred, {"echo"});
  ASSERT_TRUE(run.result.value("ok", false)) << run.result.dump();
  const json body = json::parse(run.result["body"].get<std::string>());
  EXPECT_NE(body["body"].get<std::string>().find("memo=hello"), std::string::npos);
  EXPECT_EQ(body["seen_in"][0], "query:key:api_key") << body.dump();  // it got the key
  EXPECT_NE(body["body"].get<std::string>().find("password="), std::string::npos);
  EXPECT_GT(run.result["headers"].size(), 10u);
  ExpectNoSecret(run.everything, kApiKey);
  ExpectNoSecret(run.everything, kPassword);
  EXPECT_NE(run.everything.find("[REDACTED]"), std::string::npos);
  for (const json& h : run.result["headers"]) {
    ExpectNoSecret(h[1].get<std::string>(), kApiKey);
    ExpectNoSecret(h[1].get<std::string>(), kPassword);
  }
}

TEST_F(ConnectorPeersTest, RedirectsStayInsideTheAllowList) {
  auto job = [&](const std::string& to, int max) {
    json j = HttpJob("GET", Url("api", "/redirect?code=302&to=" + to),
                     {{"kind", "header"}, {"name", "X-Api-Key"}});
    j["redirects"] = {{"max", max},
                      {"allow",
                       {{{"host", "api.toani.test"}, {"port", peer_->port()}},
                        {{"host", "other.toani.test"}, {"port", peer_->port()}}}}};
    return j;
  };
  auto enc = [](const std::string& u) {
    std::string o;
    for (char c : u)
      o += (c == ':' ? "%3A" : c == '/' ? "%2F" : c == '?' ? "%3F" : std::string(1, c));
    return o;
  };
  // Same host: followed, and the credential goes along.
  Run same = Execute(job(enc(Url("api", "/check")), 2), kApiKey, {"api", "other"});
  ASSERT_TRUE(same.result.value("ok", false)) << same.result.dump();
  EXPECT_EQ(same.result["status"], 200);
  EXPECT_EQ(same.result["redirects"], 1);
  // Another allowed host: followed, but the credential is not sent there.
  Run other = Execute(job(enc(Url("other", "/check")), 2), kApiKey, {"api", "other"});
  ASSERT_TRUE(other.result.value("ok", false)) << other.result.dump();
  EXPECT_EQ(other.result["status"], 401);
  EXPECT_EQ(other.result["redirects"], 1);
  // A host outside the allow-list: refused before any connection.
  Run evil = Execute(job(enc(Url("evil", "/check")), 2), kApiKey, {"api", "other", "evil"});
  EXPECT_FALSE(evil.result.value("ok", true));
  EXPECT_NE(evil.result["error"].get<std::string>().find("not in the allow-list"),
            std::string::npos);
  for (const std::string& l : evil.proxy_log)
    EXPECT_EQ(l.find("host=evil"), std::string::npos) << l;
  // Plain http: refused.
  Run http = Execute(job(enc("http://api.toani.test/check"), 2), kApiKey, {"api"});
  EXPECT_FALSE(http.result.value("ok", true));
  EXPECT_NE(http.result["error"].get<std::string>().find("non-https"), std::string::npos);
  // Redirects off (the default): the 302 comes back as is.
  Run off = Execute(job(enc(Url("api", "/check")), 0), kApiKey, {"api"});
  EXPECT_EQ(off.result["status"], 302);
}

TEST_F(ConnectorPeersTest, FormPostUrlencodedAndMultipart) {
  const std::string cred = json{{"username", kUser}, {"password", kPassword}}.dump();
  for (const std::string encoding : {"urlencoded", "multipart"}) {
    json job = HttpJob("POST", Url("forms", "/form"), {{"kind", "none"}});
    job["connector"] = "form";
    job["form"] = {{"encoding", encoding},
                   {"fields",
                    {{{"name", "user"}, {"credential_field", "username"}},
                     {{"name", "password"}, {"credential_field", "password"}},
                     {{"name", "memo"}, {"value", "rent & utilities"}}}}};
    Run run = Execute(job, cred, {"forms"});
    ASSERT_TRUE(run.result.value("ok", false)) << run.result.dump();
    EXPECT_EQ(run.result["status"], 200) << run.result.dump();
    json body = json::parse(run.result["body"].get<std::string>());
    EXPECT_TRUE(body["logged_in"].get<bool>());
    EXPECT_EQ(body["encoding"], encoding);
    EXPECT_EQ(body["memo"], "rent & utilities");
    EXPECT_EQ(body["echo_password"], "[REDACTED]");
    ExpectNoSecret(run.everything, kPassword);
  }
  // A wrong password is refused by the peer: the success above is meaningful.
  json job = HttpJob("POST", Url("forms", "/form"), {{"kind", "none"}});
  job["connector"] = "form";
  job["form"] = {{"encoding", "urlencoded"},
                 {"fields",
                  {{{"name", "user"}, {"credential_field", "username"}},
                   {{"name", "password"}, {"value", "guess"}}}}};
  EXPECT_EQ(Execute(job, cred, {"forms"}).result["status"], 403);
}

TEST_F(ConnectorPeersTest, OauthRefreshRotationAndExpiredAccessToken) {
  const std::string ca = dir_ + "/cert.pem";
  json state = peer_->Admin(
      ca, "POST", "/admin/oauth",
      {{"refresh", "rt-initial-0001"}, {"expire_next", 1}, {"exchanges", 0}, {"refused", 0}});
  ASSERT_TRUE(state.is_object()) << "admin call failed";
  const std::string cred = json{
      {"client_id", "toani-client"},
      {"client_secret", "cs-9f8e7d6c5b4a"},
      {"refresh_token",
       "rt-initial-0001"}}.dump();
  auto job = [&] {
    json j = HttpJob("GET", Url("api", "/resource"),
                     {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}});
    j["connector"] = "oauth";
    j["oauth"] = {
        {"token_url", "https://oauth.toani.test:" + std::to_string(peer_->oauth_port()) + "/token"},
        {"client_auth", "basic"}};
    return j;
  };
  std::string keyd_keys;
  Run run = Execute(job(), cred, {"api", "oauth"}, &keyd_keys);
  ASSERT_TRUE(run.result.value("ok", false)) << run.result.dump();
  EXPECT_EQ(run.result["status"], 200) << run.result.dump();
  json body = json::parse(run.result["body"].get<std::string>());
  EXPECT_EQ(body["data"], "resource-ok");
  EXPECT_EQ(body["echoed_token"], "[REDACTED]");  // the access token never leaves
  state = peer_->Admin(ca, "GET", "/admin/oauth");
  EXPECT_EQ(state["exchanges"], 2);  // the first access token was already expired
  EXPECT_EQ(state["resource_refused"], 1);
  // The rotated refresh token comes back sealed to "keyd" only.
  ASSERT_TRUE(run.result.contains("resealed_credential")) << run.result.dump();
  auto sealed = Base64UrlDecodeStrict(run.result["resealed_credential"].get<std::string>());
  ASSERT_TRUE(sealed.ok());
  std::string opened(sealed->size() - crypto_box_SEALBYTES, '\0');
  ASSERT_EQ(
      crypto_box_seal_open(reinterpret_cast<uint8_t*>(opened.data()), sealed->data(),
                           sealed->size(), reinterpret_cast<const uint8_t*>(keyd_keys.data()) + 32,
                           reinterpret_cast<const uint8_t*>(keyd_keys.data())),
      0);
  json rotated = json::parse(opened);
  const std::string current = state["refresh"];
  EXPECT_EQ(rotated["refresh_token"], current);
  EXPECT_EQ(rotated["client_id"], "toani-client");
  EXPECT_EQ(run.everything.find(current), std::string::npos);  // not in clear anywhere
  // The old refresh token is dead at the server now: using it fails closed.
  Run stale = Execute(job(), cred, {"api", "oauth"}, &keyd_keys);
  EXPECT_FALSE(stale.result.value("ok", true));
  EXPECT_NE(stale.result["error"].get<std::string>().find("invalid_grant"), std::string::npos)
      << stale.result.dump();
  // The resealed one works.
  Run again = Execute(job(), rotated.dump(), {"api", "oauth"}, &keyd_keys);
  EXPECT_EQ(again.result["status"], 200) << again.result.dump();
  // The token endpoint outside the allow-list: nothing is sent.
  Run blocked = Execute(job(), rotated.dump(), {"api"}, &keyd_keys);
  EXPECT_FALSE(blocked.result.value("ok", true));
}

TEST_F(ConnectorPeersTest, BrowserLogsIntoALegacyPageAndExtractsBehindTheLogin) {
  const std::string cred = json{{"username", kUser}, {"password", kPassword}}.dump();
  auto job = [&](bool screenshots, int step_timeout_ms = 30000) {
    return json{{"connector", "browser"},
                {"browser",
                 {{"screenshots", screenshots},
                  {"step_timeout_ms", step_timeout_ms},
                  {"steps",
                   {{{"op", "goto"}, {"url", Url("login", "/login")}},
                    {{"op", "fill"}, {"selector", "#user"}, {"credential_field", "username"}},
                    {{"op", "fill"}, {"selector", "#password"}, {"credential_field", "password"}},
                    {{"op", "click"}, {"selector", "#submit"}},
                    {{"op", "wait_for"}, {"selector", "#balance"}},
                    {{"op", "extract"}, {"selector", "#balance"}, {"name", "balance"}},
                    {{"op", "extract"}, {"selector", "#leak"}, {"name", "leak"}},
                    {{"op", "screenshot"}, {"name", "after-login"}}}}}}};
  };
  const auto t0 = std::chrono::steady_clock::now();
  Run with = Execute(job(true), cred, {"login"}, nullptr, /*browser=*/true);
  const auto ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0);
  std::printf("browser login-and-extract: %lld ms\n", static_cast<long long>(ms.count()));
  ASSERT_TRUE(with.result.value("ok", false)) << with.result.dump() << with.everything;
  EXPECT_EQ(with.result["extracted"]["balance"], "4242.17 EUR");
  const std::string leak = with.result["extracted"].value("leak", "");
  EXPECT_NE(leak.find("[REDACTED]"), std::string::npos) << leak;
  ExpectNoSecret(with.everything, kPassword);
  ASSERT_EQ(with.result["screenshots"].size(), 1u);
  const std::string png = with.result["screenshots"][0]["png_base64"];
  EXPECT_EQ(png.rfind("iVBORw0KGgo", 0), 0u);  // a PNG
  // Every connection Chromium made went through the egress proxy, to the login host.
  bool allowed = false;
  for (const std::string& l : with.proxy_log) {
    allowed |= l.rfind("allow host=login.toani.test", 0) == 0;
    EXPECT_EQ(l.rfind("allow", 0) == 0 && l.find("host=login.toani.test") == std::string::npos,
              false)
        << l;
  }
  EXPECT_TRUE(allowed);
  // Screenshots not allowed by the policy: none taken, none returned.
  Run without = Execute(job(false), cred, {"login"}, nullptr, /*browser=*/true);
  ASSERT_TRUE(without.result.value("ok", false)) << without.result.dump();
  EXPECT_EQ(without.result["extracted"]["balance"], "4242.17 EUR");
  EXPECT_FALSE(without.result.contains("screenshots"));
  // A wrong password: the value behind the login is never reached.
  Run wrong = Execute(job(false, 5000), json{{"username", kUser}, {"password", "nope-nope"}}.dump(),
                      {"login"}, nullptr, /*browser=*/true);
  EXPECT_FALSE(wrong.result.value("ok", true));
  EXPECT_NE(wrong.result.value("error", "").find("#balance"), std::string::npos)
      << wrong.result.dump();
}

}  // namespace
}  // namespace toani
