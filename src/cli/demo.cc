// `toani demo`: one agent action through every plane, against a local HTTPS
// mock "bank" that answers only when the right credential is presented.
#include "cli/demo.h"

#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/client.h"
#include "common/encoding.h"
#include "common/secret.h"
#include "policy/signing.h"
#include "server/https_server.h"
#include "server/pki.h"

namespace toani::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

void Step(const char* what) {
  std::printf("\n==> %s\n", what);
  std::fflush(stdout);
}
void Ok(const std::string& what) {
  std::printf("    ok: %s\n", what.c_str());
  std::fflush(stdout);
}
int Failed(const std::string& what) {
  std::printf("    FAILED: %s\n", what.c_str());
  std::fflush(stdout);
  return 1;
}

// The server we started, stopped (SIGTERM, then SIGKILL) on scope exit.
struct OwnServer {
  pid_t pid = -1;
  ~OwnServer() {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

StatusOr<std::string> StartOwnServer(const DemoOptions& o, OwnServer* srv) {
  fs::create_directories(o.data_dir);
  std::string json_path = o.data_dir + "/server.json";
  fs::remove(json_path);
  std::string log_path = o.data_dir + "/server.log";
  pid_t pid = ::fork();
  if (pid < 0) return Status::Unavailable("fork failed");
  if (pid == 0) {
    FILE* log = std::fopen(log_path.c_str(), "a");
    if (log != nullptr) {
      ::dup2(fileno(log), 2);
      ::dup2(fileno(log), 1);
    }
    ::execl(o.self_path.c_str(), o.self_path.c_str(), "server", "--dev", "--data",
            o.data_dir.c_str(), "--listen", "127.0.0.1:0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  srv->pid = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(json_path)) {
      std::ifstream f(json_path);
      auto j = json::parse(f, nullptr, false);
      if (!j.is_discarded() && j.contains("address")) return j["address"].get<std::string>();
    }
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      srv->pid = -1;
      return Status::Unavailable("server exited during start-up; see " + log_path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Unavailable("server did not start within 30 s; see " + log_path);
}

std::string RandomDemoSecret() {
  uint8_t b[18];
  randombytes_buf(b, sizeof b);
  return "sk_live_" + Base64UrlEncode(std::span<const uint8_t>(b, sizeof b));
}

}  // namespace

int RunDemo(const DemoOptions& o) {
  std::printf("toani demo: an agent checks a bank balance with a credential it never sees\n");
  std::printf("data directory: %s\n", o.data_dir.c_str());

  Step("1. server");
  OwnServer own;
  std::string address = o.address;
  if (address.empty()) {
    auto started = StartOwnServer(o, &own);
    if (!started.ok()) return Failed(started.status().message());
    address = *started;
    Ok("started `toani server --dev` at " + address + " (log: " + o.data_dir + "/server.log)");
  } else {
    Ok("using the server at " + address);
  }
  auto client = ApiClient::Connect(o.data_dir, address);
  if (!client.ok()) return Failed(client.status().message());

  Step("2. a local HTTPS mock bank that demands the right credential");
  SecretBytes secret;
  if (!o.secret_file.empty()) {
    std::ifstream f(o.secret_file, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (s.empty()) return Failed("secret file is empty or unreadable: " + o.secret_file);
    secret = SecretBytes::Copy(s);
    SecureWipe(s.data(), s.size());
  } else {
    secret = SecretBytes::Copy(RandomDemoSecret());
  }
  const std::string pki = o.data_dir + "/pki";
  auto leaf = IssueLeafPem(pki + "/ca.pem", pki + "/ca-key.pem", "mock.toani.test",
                           {"mock.toani.test"}, {}, true);
  if (!leaf.ok()) return Failed("cannot issue the mock's certificate: " + leaf.status().message());
  const std::string mock_dir = o.data_dir + "/demo";
  fs::create_directories(mock_dir);
  {
    std::ofstream(mock_dir + "/mock.pem") << leaf->first;
    mode_t old = ::umask(0077);
    std::ofstream(mock_dir + "/mock-key.pem") << leaf->second;
    ::umask(old);
  }
  std::atomic<int> authorized_hits{0}, refused_hits{0};
  const std::string expected = "Bearer " + std::string(secret.UnsafeView());
  HttpsServerOptions mo;
  mo.threads = 2;
  auto mock = HttpsServer::Start(
      {mock_dir + "/mock.pem", mock_dir + "/mock-key.pem", "", false}, mo,
      [&](const HttpRequest& r) {
        HttpResponse resp;
        if (r.Header("authorization") != expected) {
          ++refused_hits;
          resp.status = 401;
          resp.body = R"({"error":"missing or wrong credential"})";
          return resp;
        }
        ++authorized_hits;
        const std::string prefix = "/v1/accounts/";
        std::string acct =
            r.path.substr(0, prefix.size()) == prefix
                ? r.path.substr(prefix.size(), r.path.find('/', prefix.size()) - prefix.size())
                : "?";
        auto cur = r.query.find("currency");
        resp.body = json{{"account", acct},
                         {"balance", "1234.56"},
                         {"currency", cur == r.query.end() ? "EUR" : cur->second},
                         {"as_of", "2026-11-21"}}
                        .dump();
        return resp;
      });
  if (!mock.ok()) return Failed("mock target: " + mock.status().message());
  const uint16_t mock_port = (*mock)->port();
  Ok("mock bank listening on 127.0.0.1:" + std::to_string(mock_port) +
     " as mock.toani.test (dev resolver override)");

  Step("3. store the credential (sealed to keyd on this side; the server relays ciphertext only)");
  auto keyd = client->Call(As::kAdmin, "GET", "/v1/keyd");
  if (!keyd.ok() || keyd->status != 200)
    return Failed("GET /v1/keyd: " + (keyd.ok() ? ProblemText(*keyd) : keyd.status().message()));
  auto intake = Base64UrlDecodeStrict(keyd->body.value("intake_public_key", ""));
  if (!intake.ok() || intake->size() != crypto_box_PUBLICKEYBYTES)
    return Failed("keyd intake key is malformed");
  Ok("keyd measurement " + keyd->body.value("measurement", "").substr(0, 16) +
     "… (simulated attestation)");
  Bytes sealed(secret.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), secret.UnsafeBytes().data(), secret.size(), intake->data());
  auto cred = client->Call(
      As::kAdmin, "POST", "/v1/credentials",
      {{"name", "demo-bank-api-key"}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}});
  if (!cred.ok() || cred->status != 201)
    return Failed("add credential: " + (cred.ok() ? ProblemText(*cred) : cred.status().message()));
  const std::string cred_id = cred->body["id"];
  Ok("credential " + cred_id + " stored, fingerprint " +
     cred->body.value("fingerprint", "").substr(0, 28) + "…");

  Step("4. apply a policy: demo-agent may read balances of 4-12 digit accounts");
  const int64_t version = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  json policy = {
      {"policy_id", "demo-bank"},
      {"version", version},
      {"actions",
       {{"bank.get_balance",
         {{"agents", {"demo-agent"}},
          {"connector", "http"},
          {"credential", cred_id},
          {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
          {"request",
           {{"method", "GET"},
            {"url", "https://mock.toani.test:" + std::to_string(mock_port) +
                        "/v1/accounts/{{account}}/balance"},
            {"query", {{"currency", "{{currency}}"}}},
            {"headers", {{"Accept", "application/json"}}}}},
          {"params",
           {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"account", "currency"}},
            {"properties",
             {{"account", {{"type", "string"}, {"pattern", "^[0-9]{4,12}$"}}},
              {"currency", {{"type", "string"}, {"enum", {"EUR", "USD"}}}}}}}},
          {"egress", {{{"host", "mock.toani.test"}, {"port", mock_port}}}},
          {"risk_tier", "low"},
          {"token_ttl_seconds", 300}}}}}};
  // Policies are signed by a registered policy-admin key: the demo makes one the
  // first time (DATA/policy-admin.key, 0600) and registers its public half.
  const std::string key_path = o.data_dir + "/policy-admin.key";
  SecretBytes admin_key;
  if (std::ifstream kf(key_path); kf) {
    std::string text;
    std::getline(kf, text);
    admin_key = SecretBytes::Copy(text);
    SecureWipe(text.data(), text.size());
  } else {
    policy::PolicyKeyPair k = policy::GeneratePolicyKey();
    auto reg = client->Call(As::kAdmin, "POST", "/v1/policy-keys",
                            {{"public_key", k.public_key}, {"name", "demo policy admin"}});
    if (!reg.ok() || reg->status != 201)
      return Failed("register policy key: " + (reg.ok() ? ProblemText(*reg) : reg.status().message()));
    int fd = ::open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const std::string_view text = k.secret.UnsafeView();
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::write(fd, "\n", 1) != 1 || ::close(fd) != 0) {
      return Failed("cannot write " + key_path);
    }
    admin_key = std::move(k.secret);
    Ok("policy-admin key " + k.key_id.substr(0, 20) + "… registered");
  }
  auto signed_policy = policy::SignPolicy(policy, admin_key);
  if (!signed_policy.ok()) return Failed("sign policy: " + signed_policy.status().message());
  auto applied = client->Call(As::kAdmin, "POST", "/v1/policies", *signed_policy);
  if (!applied.ok() || applied->status != 201)
    return Failed("apply policy: " +
                  (applied.ok() ? ProblemText(*applied) : applied.status().message()));
  Ok("policy demo-bank v" + std::to_string(version) + " applied");

  Step("5. the agent asks to act: policy check -> single-use Action Token");
  json params = {{"account", "12345678"}, {"currency", "EUR"}};
  auto auth = client->Call(As::kAgent, "POST", "/v1/authorize",
                           {{"action", "bank.get_balance"}, {"params", params}});
  if (!auth.ok() || auth->status != 200)
    return Failed("authorize: " + (auth.ok() ? ProblemText(*auth) : auth.status().message()));
  const std::string token = auth->body["token"];
  Ok("allowed (" + auth->body.value("reason", "") + "); token " + token.substr(0, 24) +
     "… expires " + auth->body.value("expires_at", ""));

  Step("6. the agent executes: fresh bwrap sandbox, credential injected inside it");
  auto exec =
      client->Call(As::kAgent, "POST", "/v1/executions", {{"token", token}, {"params", params}});
  if (!exec.ok() || exec->status != 200)
    return Failed("execute: " + (exec.ok() ? ProblemText(*exec) : exec.status().message()));
  if (!exec->body.contains("result"))
    return Failed("execution failed: " + exec->body.value("error", "?"));
  const json& result = exec->body["result"];
  std::printf("    result:  %s\n", result.dump().c_str());
  std::printf("    receipt: %s\n", exec->body["receipt"].dump(2).c_str());
  if (result.value("status", 0) != 200 ||
      result.value("body", "").find("1234.56") == std::string::npos) {
    return Failed("the target did not answer with the balance");
  }
  if (authorized_hits.load() < 1) return Failed("the mock bank never saw the right credential");
  Ok("the bank answered (it saw the right credential " + std::to_string(authorized_hits.load()) +
     " time(s)); the agent never held it");

  Step("7. the same token again is refused (single use)");
  auto replay =
      client->Call(As::kAgent, "POST", "/v1/executions", {{"token", token}, {"params", params}});
  if (!replay.ok() || replay->status != 409) {
    return Failed("replay was not refused: " +
                  (replay.ok() ? ProblemText(*replay) : replay.status().message()));
  }
  Ok("refused: " + ProblemText(*replay));

  Step("8. audit log");
  auto root = client->Call(As::kAdmin, "GET", "/v1/audit/root");
  if (!root.ok() || root->status != 200)
    return Failed("audit root: " + (root.ok() ? ProblemText(*root) : root.status().message()));
  std::printf("    audit root: size %s, root %s\n", root->body["size"].dump().c_str(),
              root->body.value("root", "").c_str());
  (*mock)->Stop();
  std::printf("\ndemo completed: every step passed\n");
  return 0;
}

}  // namespace toani::cli
