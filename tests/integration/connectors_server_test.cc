// The connectors through the real server (`toani server --dev`, keyd, bwrap sandboxes,
// egress proxy) against real peers started here (tests/peers/targets.js: an echo
// target, oauth2-mock-server, a webhook target signing with the npm standardwebhooks
// library). Checks what the agent gets, what the logs and the audit log hold, and that
// credentials never appear in any of them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "../peers/node_peer.h"
#include "common/encoding.h"
#include "server_harness.h"
#include "signed_policy.h"

namespace toani::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string Random(const std::string& prefix) {
  uint8_t b[18];
  randombytes_buf(b, sizeof b);
  return prefix + Base64UrlEncode(std::span<const uint8_t>(b, sizeof b));
}

// Every common form of `v`, as the echo target sends it back.
std::vector<std::string> Forms(const std::string& v) {
  std::string hex = HexEncode(AsBytes(v)), upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string b64 = Base64Encode(AsBytes(v));
  std::string b64np = b64;
  while (!b64np.empty() && b64np.back() == '=') b64np.pop_back();
  std::string url;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      url.push_back(static_cast<char>(c));
    } else {
      static const char* d = "0123456789ABCDEF";
      url += {'%', d[c >> 4], d[c & 15]};
    }
  }
  return {v, b64, b64np, Base64UrlEncode(AsBytes(v)), hex, upper, url};
}

void ExpectAbsent(const std::string& text, const std::string& secret, const std::string& where) {
  for (const std::string& f : Forms(secret)) {
    EXPECT_EQ(text.find(f), std::string::npos) << "a form of the credential is in " << where;
  }
}

// The server's sandboxes as seen from the host: each bwrap child of the server with
// every process below it and its per-execution directory (from bwrap's command line).
struct HostSandbox {
  std::vector<pid_t> pids;  // bwrap first, then its descendants
  std::string dir;
};

std::map<pid_t, HostSandbox> SandboxesOf(pid_t server) {
  std::map<pid_t, std::vector<pid_t>> children;
  std::map<pid_t, std::string> comm;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    const std::string stat = ReadFileOrEmpty(e.path().string() + "/stat");
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 4 >= stat.size())
      continue;
    const pid_t pid = std::atoi(name.c_str());
    comm[pid] = stat.substr(open + 1, close - open - 1);
    children[std::atoi(stat.c_str() + close + 4)].push_back(pid);
  }
  std::map<pid_t, HostSandbox> out;
  for (pid_t b : children[server]) {
    if (comm[b] != "bwrap") continue;
    HostSandbox sb;
    sb.pids.push_back(b);
    for (size_t i = 0; i < sb.pids.size(); ++i) {
      const pid_t p = sb.pids[i];
      for (pid_t c : children[p]) sb.pids.push_back(c);
    }
    std::string cmdline = ReadFileOrEmpty("/proc/" + std::to_string(b) + "/cmdline");
    for (size_t at = 0; at < cmdline.size();) {
      const size_t end = cmdline.find('\0', at);
      const std::string arg = cmdline.substr(at, end - at);
      if (arg.size() > 12 && arg.ends_with("/egress.sock") && arg.rfind("/run/toani/", 0) != 0) {
        sb.dir = arg.substr(0, arg.size() - 12);
      }
      if (end == std::string::npos) break;
      at = end + 1;
    }
    out[b] = sb;
  }
  return out;
}

// Gone, a zombie, or with SIGKILL pending: it will never run another instruction.
bool DeadOrKillPending(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return true;
  bool dying = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("State:", 0) == 0) {
      if (line.find('Z') != std::string::npos || line.find('X') != std::string::npos) dying = true;
    } else if (line.rfind("SigPnd:", 0) == 0 || line.rfind("ShdPnd:", 0) == 0) {
      if (std::stoull(line.substr(7), nullptr, 16) & (1ull << (SIGKILL - 1))) dying = true;
    }
  }
  return dying;
}

class ConnectorsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/toani-csrv-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=toani-peers -addext 'subjectAltName=DNS:*.toani.test' -keyout " +
        dir_ + "/key.pem -out " + dir_ + "/cert.pem 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ::chmod((dir_ + "/cert.pem").c_str(), 0644);
    api_key_ = Random("sk_live_");
    whsec_ = "whsec_" + Base64Encode(AsBytes(Random("k") + Random("k")).subspan(0, 32));
    peer_ = std::make_unique<NodePeer>(dir_, json{{"cert", dir_ + "/cert.pem"},
                                                  {"key", dir_ + "/key.pem"},
                                                  {"secrets",
                                                   {{"api_key", api_key_},
                                                    {"client_id", "toani-client"},
                                                    {"client_secret", "cs-server-test-1"},
                                                    {"refresh_token", "rt-server-0001"}}}});
    ASSERT_TRUE(peer_->ok()) << "tests/peers/targets.js did not start";
    server_.extra_args = {"--connector-ca", dir_ + "/cert.pem", "--public-listen", "127.0.0.1:0"};
    Status st = server_.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override {
    server_.Stop();
    peer_.reset();
    fs::remove_all(dir_);
  }

  std::string AddCredential(const std::string& name, const std::string& plaintext) {
    auto keyd = server_.CallJson("admin", "GET", "/v1/keyd");
    EXPECT_TRUE(keyd.ok());
    auto pk = Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
    Bytes sealed(plaintext.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), AsBytes(plaintext).data(), plaintext.size(), pk->data());
    long st = 0;
    auto cred = server_.CallJson(
        "admin", "POST", "/v1/credentials",
        {{"name", name}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}}, &st);
    EXPECT_EQ(st, 201);
    return cred.ok() ? (*cred)["id"].get<std::string>() : "";
  }

  void Apply(const std::string& id, int version, const json& actions) {
    long st = 0;
    if (!signer_) signer_ = std::make_unique<PolicySigner>(server_);
    auto r = signer_->Apply({{"policy_id", id}, {"version", version}, {"actions", actions}}, &st);
    ASSERT_EQ(st, 201) << (r.ok() ? r->dump() : r.status().ToString());
  }

  json Run(const std::string& action, const json& params, long* status) {
    long st = 0;
    auto auth = server_.CallJson("agent", "POST", "/v1/authorize",
                                 {{"action", action}, {"params", params}}, &st);
    EXPECT_EQ(st, 200) << (auth.ok() ? auth->dump() : "");
    if (!auth.ok() || !auth->contains("token")) return nullptr;
    auto ex = server_.CallJson("agent", "POST", "/v1/executions",
                               {{"token", (*auth)["token"]}, {"params", params}}, status);
    return ex.ok() ? *ex : json(nullptr);
  }

  std::string Url(const std::string& host, const std::string& path) const {
    return "https://" + host + ".toani.test:" + std::to_string(peer_->port()) + path;
  }
  json Egress(std::initializer_list<const char*> hosts) const {
    json e = json::array();
    for (const char* h : hosts) {
      e.push_back({{"host", std::string(h) + ".toani.test"}, {"port", peer_->port()}});
      e.push_back({{"host", std::string(h) + ".toani.test"}, {"port", peer_->oauth_port()}});
    }
    return e;
  }

  // POSTs a callback like a third party would: no client certificate.
  long PostCallback(const std::string& url, const json& headers, const std::string& body) {
    const std::string body_file = dir_ + "/cb-body.json";
    { std::ofstream(body_file) << body; }
    std::string cmd = "curl -s -o /dev/null -w '%{http_code}' --max-time 30 --cacert '" +
                      server_.data_dir() + "/pki/ca.pem' -X POST --data-binary @" + body_file +
                      " -H 'Content-Type: application/json'";
    for (const char* h : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
      if (headers.contains(h))
        cmd += " -H '" + std::string(h) + ": " + headers[h].get<std::string>() + "'";
    }
    cmd += " '" + url + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[16] = {};
    size_t n = std::fread(buf, 1, sizeof buf - 1, p);
    ::pclose(p);
    return std::atol(std::string(buf, n).c_str());
  }

  std::string dir_, api_key_, whsec_;
  std::unique_ptr<NodePeer> peer_;
  ServerHarness server_;
  std::unique_ptr<PolicySigner> signer_;  // signs and applies policies (registers its key once)
};

TEST_F(ConnectorsServerTest, EchoTargetLeavesNoTraceInResultsLogsOrAudit) {
  const std::string cred = AddCredential("echo-key", api_key_);
  json echo_headers = json::array();
  for (int i = 0; i < 10; ++i) {
    for (const char* k : {"raw", "b64", "b64url", "hex", "url"}) {
      echo_headers.push_back("x-echo-" + std::to_string(i) + "-" + k);
    }
  }
  json actions = {
      {"echo.header",
       {{"agents", {"demo-agent"}},
        {"connector", "http"},
        {"credential", cred},
        {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
        {"request", {{"method", "GET"}, {"url", Url("echo", "/echo")}}},
        {"egress", Egress({"echo"})},
        {"response", {{"headers", echo_headers}}}}},
      {"echo.query",
       {{"agents", {"demo-agent"}},
        {"connector", "http"},
        {"credential", cred},
        {"inject", {{"kind", "query"}, {"name", "api_key"}}},
        {"request", {{"method", "GET"}, {"url", Url("echo", "/echo")}}},
        {"egress", Egress({"echo"})},
        {"response", {{"headers", echo_headers}, {"redact_fields", {"/headers/host"}}}}}}};
  Apply("echo", 1, actions);
  std::string agent_saw;
  for (const char* action : {"echo.header", "echo.query"}) {
    long st = 0;
    json out = Run(action, json::object(), &st);
    ASSERT_EQ(st, 200) << out.dump();
    ASSERT_TRUE(out.contains("result")) << out.dump();
    EXPECT_EQ(out["result"]["status"], 200);
    json body = json::parse(out["result"]["body"].get<std::string>());
    EXPECT_FALSE(body["seen_in"].empty()) << "the target did receive the key";
    EXPECT_GT(out["result"]["headers"].size(), 5u) << out.dump();  // echoes came back
    EXPECT_NE(out.dump().find("[REDACTED]"), std::string::npos);
    agent_saw += out.dump() + out["result"]["body"].get<std::string>();
    for (const json& h : out["result"]["headers"]) agent_saw += h[1].get<std::string>();
  }
  // The response rule redacted a field of the JSON body.
  ExpectAbsent(agent_saw, api_key_, "the agent's results");
  auto entries = server_.CallJson("admin", "GET", "/v1/audit/entries");
  ASSERT_TRUE(entries.ok());
  ExpectAbsent(entries->dump(), api_key_, "the audit entries");
  EXPECT_EQ(server_.Stop(), 0);
  const std::string log = ReadFileOrEmpty(server_.log_path());
  EXPECT_NE(log.find("execution_finished"), std::string::npos);
  ExpectAbsent(log, api_key_, "the server log");
  for (const auto& f : fs::recursive_directory_iterator(server_.data_dir())) {
    if (f.is_regular_file())
      ExpectAbsent(ReadFileOrEmpty(f.path().string()), api_key_, f.path().string());
  }
}

// The sandbox an execution used is SIGKILLed, with every process in it, before the agent
// gets its answer; its teardown (reaping, cgroup, proxy, directory) happens after the
// answer and leaves nothing behind. The other pre-started sandboxes are untouched.
TEST_F(ConnectorsServerTest, UsedSandboxIsKilledBeforeTheAnswerAndLeavesNothing) {
  const std::string cred = AddCredential("teardown-key", api_key_);
  Apply("teardown", 1,
        {{"echo.teardown",
          {{"agents", {"demo-agent"}},
           {"connector", "http"},
           {"credential", cred},
           {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
           {"request", {{"method", "GET"}, {"url", Url("echo", "/echo")}}},
           {"egress", Egress({"echo"})}}}});
  auto sj = json::parse(ReadFileOrEmpty(server_.data_dir() + "/server.json"), nullptr, false);
  ASSERT_TRUE(sj.is_object() && sj.contains("pid"));
  const pid_t server = sj["pid"].get<pid_t>();
  auto pool_ready = [&] {
    auto r = server_.CallJson("admin", "GET", "/readyz");
    return r.ok() && r->contains("sandbox_pool") ? (*r)["sandbox_pool"].value("ready", 0) : 0;
  };
  for (int round = 0; round < 3; ++round) {
    // The default pool (2) full: both sandboxes waiting.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (pool_ready() < 2 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::map<pid_t, HostSandbox> before = SandboxesOf(server);
    ASSERT_EQ(before.size(), 2u) << "round " << round;
    long st = 0;
    json out = Run("echo.teardown", json::object(), &st);
    ASSERT_EQ(st, 200) << out.dump();
    ASSERT_TRUE(out.contains("result")) << out.dump();
    // At the answer: exactly one of them (the one the execution took) is dead or has
    // SIGKILL pending in every process; the other is still waiting.
    std::vector<const HostSandbox*> killed;
    for (const auto& [bwrap, sb] : before) {
      size_t dying = 0;
      for (pid_t p : sb.pids) dying += DeadOrKillPending(p) ? 1 : 0;
      if (dying == sb.pids.size()) {
        killed.push_back(&sb);
      } else {
        EXPECT_EQ(dying, 0u) << "a sandbox half killed, pid " << bwrap;
      }
    }
    ASSERT_EQ(killed.size(), 1u) << "round " << round;
    // After the answer, within a bounded time: every process reaped, the directory (with
    // the egress socket and the CA copy) removed.
    const HostSandbox& used = *killed.front();
    EXPECT_FALSE(used.dir.empty());
    const auto gone_by = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto all_gone = [&] {
      for (pid_t p : used.pids) {
        if (fs::exists("/proc/" + std::to_string(p))) return false;
      }
      return used.dir.empty() || !fs::exists(used.dir);
    };
    while (!all_gone() && std::chrono::steady_clock::now() < gone_by) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(all_gone()) << "sandbox " << used.pids.front() << " (" << used.dir
                            << ") left something behind";
  }
}

TEST_F(ConnectorsServerTest, OauthRotatedRefreshTokenIsStoredSealedAndUsedNextTime) {
  const std::string ca = dir_ + "/cert.pem";
  ASSERT_TRUE(
      peer_->Admin(ca, "POST", "/admin/oauth", {{"refresh", "rt-server-0001"}}).is_object());
  const std::string cred = AddCredential("oauth", json{{"client_id", "toani-client"},
                                                       {"client_secret", "cs-server-test-1"},
                                                       {"refresh_token", "rt-server-0001"}}
                                                      .dump());
  Apply("oauth", 1,
        {{"api.resource",
          {{"agents", {"demo-agent"}},
           {"connector", "oauth"},
           {"credential", cred},
           {"oauth",
            {{"token_url",
              "https://oauth.toani.test:" + std::to_string(peer_->oauth_port()) + "/token"}}},
           {"request", {{"method", "GET"}, {"url", Url("api", "/resource")}}},
           {"egress", Egress({"api", "oauth"})},
           {"response", {{"keep_fields", {"/data"}}}}}}});
  for (int i = 0; i < 3; ++i) {
    long st = 0;
    json out = Run("api.resource", json::object(), &st);
    ASSERT_EQ(st, 200) << out.dump();
    ASSERT_TRUE(out.contains("result")) << out.dump();
    EXPECT_EQ(out["result"]["status"], 200) << out.dump();
    // keep_fields: only /data survives (not the echoed access token, not sub).
    EXPECT_EQ(json::parse(out["result"]["body"].get<std::string>()),
              json({{"data", "resource-ok"}}));
  }
  json state = peer_->Admin(ca, "GET", "/admin/oauth");
  EXPECT_EQ(state["exchanges"], 3);
  EXPECT_EQ(state["refused"], 0);  // each run presented the current (rotated) token
  auto creds = server_.CallJson("admin", "GET", "/v1/credentials");
  ASSERT_TRUE(creds.ok());
  EXPECT_EQ((*creds)["credentials"][0]["version"], 4) << creds->dump();
  auto entries = server_.CallJson("admin", "GET", "/v1/audit/entries");
  int rotations = 0;
  for (const json& e : (*entries)["entries"]) rotations += e["type"] == "credential.rotated";
  EXPECT_EQ(rotations, 3);
  const std::string current = state["refresh"];
  ExpectAbsent(entries->dump(), current, "the audit entries");
  EXPECT_EQ(server_.Stop(), 0);
  ExpectAbsent(ReadFileOrEmpty(server_.log_path()), current, "the server log");
  for (const auto& f : fs::recursive_directory_iterator(server_.data_dir())) {
    if (f.is_regular_file())
      ExpectAbsent(ReadFileOrEmpty(f.path().string()), current, f.path().string());
  }
}

TEST_F(ConnectorsServerTest, WebhookFinishesOnlyOnAValidFreshUnreplayedCallback) {
  const std::string cred = AddCredential("jobs-key", api_key_);
  const std::string secret_cred = AddCredential("jobs-whsec", whsec_);
  Apply("jobs", 1,
        {{"jobs.export",
          {{"agents", {"demo-agent"}},
           {"connector", "webhook"},
           {"credential", cred},
           {"inject", {{"kind", "header"}, {"name", "X-Api-Key"}}},
           {"webhook", {{"secret_credential", secret_cred}, {"timeout_seconds", 600}}},
           {"request",
            {{"method", "POST"},
             {"url", Url("jobs", "/jobs")},
             {"body", {{"report", "{{report}}"}, {"callback_url", "{{toani_callback_url}}"}}}}},
           {"params",
            {{"type", "object"},
             {"additionalProperties", false},
             {"properties", {{"report", {{"type", "string"}}}}}}},
           {"egress", Egress({"jobs"})}}}});
  long st = 0;
  json out = Run("jobs.export", {{"report", "q3"}}, &st);
  ASSERT_EQ(st, 202) << out.dump();
  EXPECT_EQ(out["status"], "pending");
  const std::string exec_id = out["execution_id"];
  const std::string ca = dir_ + "/cert.pem";
  json jobs = peer_->Admin(ca, "GET", "/admin/jobs");
  ASSERT_EQ(jobs.size(), 1u) << jobs.dump();
  const std::string path = jobs[0]["callback"];  // the public listener's URL
  ASSERT_TRUE(path.ends_with("/v1/callbacks/" + exec_id)) << path;
  ASSERT_TRUE(path.starts_with("https://127.0.0.1:")) << path;
  ASSERT_NE(path, server_.address() + "/v1/callbacks/" + exec_id);
  EXPECT_EQ(jobs[0]["input"]["report"], "q3");

  auto poll = [&] {
    long s = 0;
    auto r = server_.CallJson("agent", "GET", "/v1/executions/" + exec_id, nullptr, &s);
    EXPECT_EQ(s, 200);
    return r.ok() ? *r : json();
  };
  EXPECT_EQ(poll()["status"], "pending");
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string body = R"({"status":"done","rows":42,"leak":")" + api_key_ + R"("})";
  auto sign = [&](const std::string& secret, const std::string& id, int64_t ts,
                  const std::string& what = "") {
    return peer_->Admin(
        ca, "POST", "/admin/sign",
        {{"secret", secret}, {"id", id}, {"timestamp", ts}, {"body", what.empty() ? body : what}});
  };
  // Signed with another secret; a stale timestamp; unsigned; unknown execution.
  const std::string other = "whsec_" + Base64Encode(AsBytes(std::string(32, 'x')));
  EXPECT_EQ(PostCallback(path, sign(other, "msg_1", now), body), 401);
  EXPECT_EQ(PostCallback(path, sign(whsec_, "msg_2", now - 600), body), 401);
  EXPECT_EQ(PostCallback(path, json::object(), body), 401);
  EXPECT_EQ(
      PostCallback(path.substr(0, path.size() - exec_id.size()) + "exe_000000000000000000000000",
                   sign(whsec_, "msg_3", now), body),
      401);
  // The mTLS listener does not take a callback without a client certificate at all.
  EXPECT_EQ(PostCallback(server_.address() + "/v1/callbacks/" + exec_id, sign(whsec_, "msg_5", now),
                         body),
            0);
  json tampered = sign(whsec_, "msg_4", now);
  EXPECT_EQ(PostCallback(path, tampered, body + " "), 401);
  EXPECT_EQ(poll()["status"], "pending");
  // Valid: finishes the execution.
  json good = sign(whsec_, "msg_ok", now);
  EXPECT_EQ(PostCallback(path, good, body), 204);
  // The same message again: a replay.
  EXPECT_EQ(PostCallback(path, good, body), 409);
  // A new valid message for a finished execution changes nothing.
  const std::string late = R"({"status":"failed"})";
  EXPECT_EQ(PostCallback(path, sign(whsec_, "msg_late", now, late), late), 409);
  json done = poll();
  EXPECT_EQ(done["status"], "succeeded") << done.dump();
  EXPECT_EQ(done["result"]["body"]["rows"], 42);
  EXPECT_EQ(done["result"]["body"]["leak"], "[REDACTED]");  // shape-scrubbed (sk_live_)
  // Another agent cannot read it.
  long s = 0;
  auto other_view = server_.CallJson("admin", "GET", "/v1/executions/" + exec_id, nullptr, &s);
  EXPECT_EQ(s, 403);
  auto entries = server_.CallJson("admin", "GET", "/v1/audit/entries");
  std::vector<std::string> types;
  for (const json& e : (*entries)["entries"]) types.push_back(e["type"]);
  for (const char* want :
       {"execution.started", "execution.pending", "execution.finished", "callback.refused"}) {
    EXPECT_NE(std::find(types.begin(), types.end(), want), types.end()) << want;
  }
  ExpectAbsent(entries->dump(), whsec_.substr(6), "the audit entries");
  EXPECT_EQ(server_.Stop(), 0);
  ExpectAbsent(ReadFileOrEmpty(server_.log_path()), whsec_.substr(6), "the server log");
  ExpectAbsent(ReadFileOrEmpty(server_.log_path()), api_key_, "the server log");
}

}  // namespace
}  // namespace toani::testing
