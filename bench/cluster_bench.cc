// Scale-out load generator (issue 9): authorize and execute throughput of 1, 2 and 3
// `toani server` nodes on PostgreSQL + Redis 7 (real processes on this machine, deployed
// as docs/operations.md says), each beside the single-node embedded SQLite figure measured
// in the same run. Client threads spread their requests over the nodes round-robin.
//
//   cluster_bench [--seconds S] [--clients C]
//
// authorize: POST /v1/authorize (policy check, keyd mints a token, one audit entry).
// execute:   POST /v1/authorize then POST /v1/executions on the next node (token verify,
//            replay store, two audit entries, a bwrap sandbox, keyd release, one HTTPS
//            request to a local mock target); one execution counted per pair.
#include <atomic>
#include <cstdio>
#include <cstring>

#include "cluster/cluster_harness.h"

namespace toani::testing {
namespace {

using nlohmann::json;

struct Deployment {
  std::vector<ClusterNode*> nodes;
  std::string policy;
};

double Run(const Deployment& d, int clients, int seconds, bool execute) {
  std::atomic<uint64_t> done{0}, failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      uint64_t i = static_cast<uint64_t>(c);
      while (!stop) {
        ClusterNode* a = d.nodes[i % d.nodes.size()];
        ClusterNode* b = d.nodes[(i + 1) % d.nodes.size()];
        const json params = {{"account", std::to_string(i % 100000)}};
        ++i;
        auto au = a->Call("agent", "POST", "/v1/authorize",
                          {{"action", d.policy + ".balance"}, {"params", params}});
        if (!au.ok() || au->status != 200) {
          ++failed;
          continue;
        }
        if (!execute) {
          if (!stop) ++done;
          continue;
        }
        const std::string token = json::parse(au->body).value("token", "");
        auto ex =
            b->Call("agent", "POST", "/v1/executions", {{"token", token}, {"params", params}});
        if (!ex.ok() || ex->status != 200) {
          ++failed;
          continue;
        }
        if (!stop) ++done;
      }
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& t : ts) t.join();
  if (failed > 0) std::fprintf(stderr, "  (%llu failed requests)\n", (unsigned long long)failed);
  return static_cast<double>(done.load()) / secs;
}

// Credential through the first node, policy through the last: the same set-up every time.
std::string Prepare(const std::vector<ClusterNode*>& nodes, const std::string& pki,
                    const std::string& dir, std::unique_ptr<MockBank>* bank) {
  const std::string secret = "sk_bench_secret";
  *bank = StartBank(pki, dir, secret);
  if (!*bank) return "mock bank did not start";
  auto cred = AddCredential(*nodes.front(), "bench", secret);
  if (!cred.ok()) return cred.status().message();
  auto ap = ApplySignedPolicy(*nodes.front(), *nodes.back(),
                              Policy("bench", 1, *cred, (*bank)->server->port()));
  if (!ap.ok() || ap->status != 201) return "policy: " + (ap.ok() ? ap->body : "");
  return "";
}

// The single-node embedded default: `toani server --dev` (SQLite, embedded replay store).
struct DevServer {
  ClusterNode node;
  std::string root;
  ~DevServer() {
    if (node.pid > 0) {
      ::kill(node.pid, SIGTERM);
      ::waitpid(node.pid, nullptr, 0);
    }
    std::error_code ec;
    cfs::remove_all(root, ec);
  }
  std::string Start() {
    char tmpl[] = "/tmp/toani-bench-XXXXXX";
    root = ::mkdtemp(tmpl);
    node.name = "sqlite";
    node.data = root + "/data";
    node.log = root + "/server.log";
    node.pid = ::fork();
    if (node.pid == 0) {
      FILE* log = std::fopen(node.log.c_str(), "a");
      if (log) {
        ::dup2(fileno(log), 1);
        ::dup2(fileno(log), 2);
      }
      const std::string bin = ToaniBin("toani");
      ::execl(bin.c_str(), bin.c_str(), "server", "--dev", "--data", node.data.c_str(), "--listen",
              "127.0.0.1:0", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 1200; ++i) {
      auto j = json::parse(ReadAll(node.data + "/server.json"), nullptr, false);
      if (!j.is_discarded() && j.contains("address")) {
        node.address = j["address"];
        return "";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "dev server did not start: " + ReadAll(node.log);
  }
};

int Main(int argc, char** argv) {
  int seconds = 10, clients = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--clients")) clients = std::atoi(argv[i + 1]);
  }
  if (sodium_init() < 0) return 1;
  std::printf("cluster_bench: %d client threads, %d s per figure\n", clients, seconds);

  double base_auth = 0, base_exec = 0;
  {
    DevServer dev;
    std::string err = dev.Start();
    if (!err.empty()) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    std::unique_ptr<MockBank> bank;
    err = Prepare({&dev.node}, dev.node.data + "/pki", dev.root, &bank);
    if (!err.empty()) {
      std::fprintf(stderr, "sqlite setup: %s\n", err.c_str());
      return 1;
    }
    Deployment d{{&dev.node}, "bench"};
    base_auth = Run(d, clients, seconds, false);
    base_exec = Run(d, clients, seconds, true);
    bank->server->Stop();
  }
  std::printf("%-28s %14s %14s\n", "deployment", "authorize/s", "execute/s");
  std::printf("%-28s %14.1f %14.1f\n", "1 node, SQLite (baseline)", base_auth, base_exec);
  std::fflush(stdout);

  Cluster cluster({"--resolver-override", "*.toani.test=127.0.0.1"});
  std::string err = cluster.StartBackends();
  if (!err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  std::unique_ptr<MockBank> bank;
  for (int n = 1; n <= 3; ++n) {
    err = cluster.AddNode();
    if (!err.empty()) {
      std::fprintf(stderr, "node %d: %s\n", n, err.c_str());
      return 1;
    }
    std::vector<ClusterNode*> nodes;
    for (auto& p : cluster.nodes()) nodes.push_back(p.get());
    if (n == 1) {
      err = Prepare(nodes, nodes[0]->data + "/pki", cluster.root(), &bank);
      if (!err.empty()) {
        std::fprintf(stderr, "cluster setup: %s\n", err.c_str());
        return 1;
      }
    }
    Deployment d{nodes, "bench"};
    const double a = Run(d, clients, seconds, false);
    const double e = Run(d, clients, seconds, true);
    char label[64];
    std::snprintf(label, sizeof label, "%d node%s, PostgreSQL+Redis", n, n > 1 ? "s" : "");
    std::printf("%-28s %14.1f %14.1f   (%.2fx / %.2fx the SQLite node)\n", label, a, e,
                a / base_auth, e / base_exec);
    std::fflush(stdout);
  }
  bank->server->Stop();
  return 0;
}

}  // namespace
}  // namespace toani::testing

int main(int argc, char** argv) { return toani::testing::Main(argc, argv); }
