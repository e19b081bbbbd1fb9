// A scale-out deployment on one machine for tests and benchmarks, done the way
// docs/operations.md tells an operator to: a real PostgreSQL and a real Redis (the
// caller's own child processes), node 1 started sealed, `toani operator init` and
// `unseal` on it, its dev PKI and keyd state (root.json, keyring.json: no key in clear)
// copied to each further node, every node unsealed with the same Shamir shares.
#pragma once

#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "policy/signing.h"
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/postgres_server.h"
#include "common/encoding.h"
#include "common/http_client.h"
#include "security/redis_server.h"
#include "server/https_server.h"
#include "server/pki.h"

namespace toani::testing {

namespace cfs = std::filesystem;

inline std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline std::string ToaniBin(const std::string& name) {
  return std::string(TOANI_BUILD_DIR) + "/bin/" + name;
}

// Runs a command with `input` on stdin; returns its exit code, stdout+stderr in *out.
inline int RunShell(const std::string& cmd, const std::string& input, std::string* out) {
  char tmpl[] = "/tmp/toani-cmd-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) return -1;
  ::close(fd);
  { std::ofstream(tmpl) << input; }
  FILE* p = ::popen((cmd + " < " + tmpl + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  out->clear();
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = ::pclose(p);
  cfs::remove(tmpl);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct ClusterNode {
  std::string name, data, log;
  pid_t pid = -1;
  std::string address;

  std::string Cli(const std::string& args) const {
    return ToaniBin("toani") + " --data " + data + " " + args;
  }
  StatusOr<ClientResponse> Call(
      const std::string& who, const std::string& method, const std::string& path,
      const nlohmann::json& body = nullptr,
      std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
    ClientTls tls{data + "/pki/ca.pem", data + "/pki/" + who + ".pem",
                  data + "/pki/" + who + "-key.pem"};
    return HttpsCall(method, address + path, body.is_null() ? "" : body.dump(),
                     body.is_null() ? "" : "application/json", tls, timeout);
  }
  bool Alive() const { return pid > 0; }
};

class Cluster {
 public:
  explicit Cluster(std::vector<std::string> extra_server_args = {})
      : extra_(std::move(extra_server_args)) {
    char tmpl[] = "/tmp/toani-cluster-XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  ~Cluster() {
    for (auto& n : nodes_) Stop(*n, SIGTERM);
    redis_.Stop();
    pg_.Stop();
    std::error_code ec;
    cfs::remove_all(root_, ec);
  }

  // PostgreSQL and Redis; "" on success.
  std::string StartBackends() {
    std::string err = pg_.Start();
    if (!err.empty()) return "postgres: " + err;
    if (!redis_.Start()) return "redis-server did not start";
    return "";
  }
  const std::string& root() const { return root_; }
  void StopRedis() { redis_.Stop(); }
  std::string pg_url() const { return pg_.url(); }
  std::string redis_url() const { return redis_.url(); }
  std::vector<std::unique_ptr<ClusterNode>>& nodes() { return nodes_; }
  const std::vector<std::string>& shares() const { return shares_; }

  // Adds and brings up one node (the first initialises the cluster's keys). "" on success.
  std::string AddNode() {
    auto n = std::make_unique<ClusterNode>();
    n->name = "node" + std::to_string(nodes_.size() + 1);
    n->data = root_ + "/" + n->name;
    n->log = root_ + "/" + n->name + ".log";
    cfs::create_directories(n->data);
    ::chmod(n->data.c_str(), 0700);
    std::string out;
    if (!nodes_.empty()) {
      // Same dev CA and server certificate, same keyd custody state (wrapped keys only).
      const std::string from = nodes_.front()->data;
      std::error_code ec;
      cfs::copy(from + "/pki", n->data + "/pki", cfs::copy_options::recursive, ec);
      if (ec) return "copy pki: " + ec.message();
      cfs::create_directories(n->data + "/keyd");
      ::chmod((n->data + "/keyd").c_str(), 0700);
      for (const char* f : {"root.json", "keyring.json"}) {
        cfs::copy_file(from + "/keyd/" + f, n->data + "/keyd/" + f, ec);
        if (ec) return std::string("copy keyd/") + f + ": " + ec.message();
        ::chmod((n->data + "/keyd/" + f).c_str(), 0600);
      }
    }
    std::string err = Spawn(*n);
    if (!err.empty()) return err;
    if (!WaitJson(*n, /*sealed=*/true))
      return n->name + " did not come up sealed:\n" + ReadAll(n->log);
    if (nodes_.empty()) {
      if (RunShell(n->Cli("operator init --shares 3 --threshold 2 --allow-simulated"), "", &out) !=
          0)
        return "operator init: " + out;
      std::regex re("share \\d+: (ts1\\.[A-Za-z0-9_-]+)");
      for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it)
        shares_.push_back((*it)[1]);
      if (shares_.size() != 3) return "operator init printed no shares: " + out;
    }
    // Each node gets a different quorum of the same shares.
    const size_t k = nodes_.size() % 3;
    for (size_t s : {k, (k + 1) % 3}) {
      if (RunShell(n->Cli("operator unseal --allow-simulated"), shares_[s] + "\n", &out) != 0)
        return n->name + " unseal: " + out;
    }
    if (!WaitJson(*n, /*sealed=*/false)) return n->name + " did not unseal:\n" + ReadAll(n->log);
    nodes_.push_back(std::move(n));
    return "";
  }

  // kill -9 (the node's keyd goes with it: it dies with its server).
  void Kill(ClusterNode& n) { Stop(n, SIGKILL); }

  // The node that logged it took the sequencer lock last (and is alive), or nullptr.
  ClusterNode* Sequencer() {
    ClusterNode* best = nullptr;
    for (auto& n : nodes_) {
      if (!n->Alive()) continue;
      std::string log = ReadAll(n->log);
      size_t on = log.rfind("\"event\":\"sequencing\"");
      size_t off = log.rfind("\"event\":\"not_sequencing\"");
      if (on != std::string::npos && (off == std::string::npos || off < on)) best = n.get();
    }
    return best;
  }

 private:
  std::string Spawn(ClusterNode& n) {
    n.pid = ::fork();
    if (n.pid < 0) return "fork failed";
    if (n.pid == 0) {
      FILE* log = std::fopen(n.log.c_str(), "a");
      if (log != nullptr) {
        ::dup2(fileno(log), 1);
        ::dup2(fileno(log), 2);
      }
      std::vector<std::string> args = {ToaniBin("toani"), "server",      "--data",  n.data,
                                       "--listen",        "127.0.0.1:0", "--store", pg_.url(),
                                       "--replay-store",  redis_.url(),  "--node",  n.name};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return "";
  }

  bool WaitJson(ClusterNode& n, bool sealed) {
    for (int i = 0; i < 1200; ++i) {
      auto j = nlohmann::json::parse(ReadAll(n.data + "/server.json"), nullptr, false);
      if (!j.is_discarded() && j.contains("address") && j.value("sealed", false) == sealed) {
        n.address = j["address"];
        return true;
      }
      if (::waitpid(n.pid, nullptr, WNOHANG) == n.pid) {
        n.pid = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // The node's children (keyd) first noted, then the node signalled and reaped; children
  // still there after a grace period are killed too: nothing is left running.
  void Stop(ClusterNode& n, int sig) {
    if (n.pid <= 0) return;
    std::vector<pid_t> kids;
    std::ifstream ch("/proc/" + std::to_string(n.pid) + "/task/" + std::to_string(n.pid) +
                     "/children");
    for (pid_t k; ch >> k;) kids.push_back(k);
    ::kill(n.pid, sig);
    int st = 0;
    for (int i = 0; i < 400; ++i) {
      if (::waitpid(n.pid, &st, WNOHANG) == n.pid) break;
      if (i == 399) {
        ::kill(n.pid, SIGKILL);
        ::waitpid(n.pid, &st, 0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    n.pid = -1;
    for (int i = 0; i < 200; ++i) {
      bool any = false;
      for (pid_t k : kids) any = any || ::kill(k, 0) == 0;
      if (!any) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    for (pid_t k : kids) ::kill(k, SIGKILL);
  }

  std::vector<std::string> extra_;
  std::string root_;
  PostgresServer pg_;
  RedisServer redis_;
  std::vector<std::unique_ptr<ClusterNode>> nodes_;
  std::vector<std::string> shares_;
};

// Seals `secret` to the node's keyd intake key and stores it as a credential through that
// node's API; returns the credential id.
inline StatusOr<std::string> AddCredential(const ClusterNode& n, const std::string& name,
                                           const std::string& secret) {
  TOANI_ASSIGN_OR_RETURN(ClientResponse k, n.Call("admin", "GET", "/v1/keyd"));
  auto kj = nlohmann::json::parse(k.body, nullptr, false);
  if (k.status != 200 || kj.is_discarded()) return Status::Unavailable("GET /v1/keyd: " + k.body);
  auto intake = Base64UrlDecodeStrict(kj.value("intake_public_key", ""));
  if (!intake.ok() || intake->size() != crypto_box_PUBLICKEYBYTES)
    return Status::Internal("bad intake key");
  std::vector<uint8_t> sealed(secret.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), reinterpret_cast<const uint8_t*>(secret.data()), secret.size(),
                  intake->data());
  TOANI_ASSIGN_OR_RETURN(
      ClientResponse r,
      n.Call("admin", "POST", "/v1/credentials",
             {{"name", name}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}}));
  auto rj = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 201 || rj.is_discarded()) return Status::Unavailable("add credential: " + r.body);
  return rj.value("id", "");
}

// A local HTTPS "bank" (certificate from the cluster's dev CA, name bank.toani.test) that
// answers only requests carrying the right credential.
struct MockBank {
  std::unique_ptr<HttpsServer> server;
  std::atomic<int> authorized{0}, refused{0};
};

inline std::unique_ptr<MockBank> StartBank(const std::string& pki, const std::string& dir,
                                           const std::string& secret) {
  auto leaf = IssueLeafPem(pki + "/ca.pem", pki + "/ca-key.pem", "bank.toani.test",
                           {"bank.toani.test"}, {}, true);
  if (!leaf.ok()) return nullptr;
  std::ofstream(dir + "/bank.pem") << leaf->first;
  std::ofstream(dir + "/bank-key.pem") << leaf->second;
  auto bank = std::make_unique<MockBank>();
  HttpsServerOptions o;
  o.threads = 4;
  MockBank* b = bank.get();
  const std::string want = "Bearer " + secret;
  auto s = HttpsServer::Start(
      {dir + "/bank.pem", dir + "/bank-key.pem", "", false}, o, [b, want](const HttpRequest& r) {
        HttpResponse resp;
        if (r.Header("authorization") != want) {
          ++b->refused;
          resp.status = 401;
          resp.body = "{}";
          return resp;
        }
        ++b->authorized;
        resp.body = nlohmann::json{{"path", r.path}, {"balance", "42.00"}}.dump();
        return resp;
      });
  if (!s.ok()) return nullptr;
  bank->server = std::move(*s);
  return bank;
}

inline nlohmann::json Policy(const std::string& id, int64_t version, const std::string& cred,
                             uint16_t port) {
  return {{"policy_id", id},
          {"version", version},
          {"actions",
           {{id + ".balance",
             {{"agents", {"demo-agent"}},
              {"connector", "http"},
              {"credential", cred},
              {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
              {"request",
               {{"method", "GET"},
                {"url", "https://bank.toani.test:" + std::to_string(port) + "/acct/{{account}}"}}},
              {"params",
               {{"type", "object"},
                {"additionalProperties", false},
                {"required", {"account"}},
                {"properties", {{"account", {{"type", "string"}, {"pattern", "^[0-9]{1,12}$"}}}}}}},
              {"egress", {{{"host", "bank.toani.test"}, {"port", port}}}},
              {"risk_tier", "low"},
              {"token_ttl_seconds", 600}}}}}};
}

// Applies `doc` signed by a fresh policy-admin key registered through `register_on`
// (issue 5: policies are signed; the key registry is shared through PostgreSQL, so the
// key may be registered on one node and used on another).
inline StatusOr<ClientResponse> ApplySignedPolicy(ClusterNode& register_on, ClusterNode& apply_on,
                                                  const nlohmann::json& doc) {
  policy::PolicyKeyPair k = policy::GeneratePolicyKey();
  TOANI_ASSIGN_OR_RETURN(ClientResponse reg,
                         register_on.Call("admin", "POST", "/v1/policy-keys",
                                          {{"public_key", k.public_key}, {"name", "cluster"}}));
  if (reg.status != 201) return Status::Internal("policy key registration: " + reg.body);
  TOANI_ASSIGN_OR_RETURN(nlohmann::json env, policy::SignPolicy(doc, k.secret));
  return apply_on.Call("admin", "POST", "/v1/policies", env);
}

}  // namespace toani::testing
