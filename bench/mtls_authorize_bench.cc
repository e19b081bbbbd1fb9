// Load generator (issue 8): POST /v1/authorize over mTLS keep-alive connections to a real
// `toani server --dev`, beside the baseline GET /healthz over the same connections in the
// same run (TLS + HTTP + route table, no policy, keyd or audit work). Prints requests/s,
// p50 and p99 of each, and the peak resident memory (VmHWM) of the server and of keyd.
// One event-driven client thread drives every connection (event_load.h), and prints its
// own CPU per request too: it shares the two cores with the server and keyd.
//
//   mtls_authorize_bench [--connections N] [--threads T] [--seconds S] [--runs R]
//
// Each authorize evaluates the policy, has keyd mint a PASETO v4 token and appends one
// durable (fsync'd, group-committed) audit entry before answering.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "event_load.h"
#include "proc_cpu.h"
#include "server/https_server.h"
#include "server/pki.h"
#include "server_harness.h"
#include "signed_policy.h"

namespace {

using nlohmann::json;
using toani::testing::ServerHarness;
using Clock = std::chrono::steady_clock;

struct Result {
  double rps = 0, p50_ms = 0, p99_ms = 0;
  size_t failed = 0, done = 0;
};

// One timed phase: `conns` keep-alive connections driven by one event loop (a closed
// loop: each sends its next request when its answer is in), `raw` on every one.
Result Load(int port, const std::string& pki, int conns, int seconds, const std::string& raw,
            int want_status) {
  toani::bench::EventLoad load(port, pki, "agent");
  toani::bench::EventLoadResult run = load.Run(conns, seconds, raw, want_status);
  std::vector<double>& all = run.latencies_ms;
  std::sort(all.begin(), all.end());
  Result r;
  r.failed = run.failed;
  r.done = all.size();
  r.rps = static_cast<double>(all.size()) / run.seconds;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return r;
}

long PeakRssKb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

int ChildNamed(int parent, const std::string& comm) {
  DIR* d = ::opendir("/proc");
  int found = -1;
  while (dirent* e = ::readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string name = stat.substr(open + 1, close - open - 1);
    int ppid = std::atoi(stat.c_str() + close + 4);
    if (ppid == parent && name == comm.substr(0, 15)) found = pid;
  }
  ::closedir(d);
  return found;
}

using toani::bench::ProcessCpuMs;

std::string Post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

int main(int argc, char** argv) {
  // The defaults are the server's (16 threads) and as many connections.
  int conns = 16, seconds = 8, threads = 16, runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--connections") conns = std::atoi(argv[i + 1]);
    if (a == "--seconds") seconds = std::atoi(argv[i + 1]);
    if (a == "--threads") threads = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
  }
  if (sodium_init() < 0) return 1;
  std::signal(SIGPIPE, SIG_IGN);
  ServerHarness h;
  const std::string cfg = h.data_dir().substr(0, h.data_dir().rfind('/')) + "/bench.json";
  std::ofstream(cfg) << R"({"rate_limit_rps": 0, "threads": )" << threads << "}";
  h.extra_args = {"--config", cfg};
  if (auto st = h.Start(); !st.ok()) {
    std::fprintf(stderr, "server: %s\n", st.message().c_str());
    return 1;
  }
  const std::string pki = h.data_dir() + "/pki";
  // Credential + policy (the action is never executed: no target needed).
  auto keyd = h.CallJson("admin", "GET", "/v1/keyd");
  auto intake = toani::Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
  const std::string secret = "sk_bench_value";
  toani::Bytes sealed(secret.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), reinterpret_cast<const uint8_t*>(secret.data()), secret.size(),
                  intake->data());
  long code = 0;
  auto cred = h.CallJson(
      "admin", "POST", "/v1/credentials",
      {{"name", "bench"}, {"type", "api_key"}, {"sealed", toani::Base64UrlEncode(sealed)}}, &code);
  if (!cred.ok() || code != 201) {
    std::fprintf(stderr, "credential: %ld\n", code);
    return 1;
  }
  json policy = {
      {"policy_id", "bench"},
      {"version", 1},
      {"actions",
       {{"bench.balance",
         {{"agents", {"demo-agent"}},
          {"connector", "http"},
          {"credential", (*cred)["id"]},
          {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
          {"request", {{"method", "GET"}, {"url", "https://bank.example:443/a/{{account}}"}}},
          {"params",
           {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"account"}},
            {"properties", {{"account", {{"type", "string"}, {"pattern", "^[0-9]{4,12}$"}}}}}}},
          {"egress", {{{"host", "bank.example"}, {"port", 443}}}},
          {"risk_tier", "low"},
          {"token_ttl_seconds", 300}}}}}};
  toani::testing::PolicySigner signer(h);  // policies are applied signed (issue 5)
  auto ap = signer.Apply(policy, &code);
  if (!ap.ok() || code != 201) {
    std::fprintf(stderr, "policy: %ld %s\n", code, ap.ok() ? ap->dump().c_str() : "");
    return 1;
  }
  const int port = std::stoi(h.address().substr(h.address().rfind(':') + 1));
  const std::string health = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
  const std::string authz =
      Post("/v1/authorize",
           json{{"action", "bench.balance"}, {"params", {{"account", "12345678"}}}}.dump());
  std::printf(
      "toani mTLS keep-alive load: %d connections, %d server threads, %d s per phase, %u CPUs\n",
      conns, threads, seconds, std::thread::hardware_concurrency());
  auto sj = json::parse(toani::testing::ReadFileOrEmpty(h.data_dir() + "/server.json"));
  int server_pid = sj["pid"];
  int keyd_pid = ChildNamed(server_pid, "toani-keyd");
  (void)Load(port, pki, conns, 2, authz, 200);  // warm-up
  Result base = Load(port, pki, conns, seconds, health, 200);
  std::printf("%-34s %12s %10s %10s %8s %20s %9s %9s\n", "phase", "req/s", "p50 ms", "p99 ms",
              "failed", "CPU/req ms", "cs/req", "steal %");
  std::printf("%-34s %12.0f %10.2f %10.2f %8zu\n", "baseline GET /healthz", base.rps, base.p50_ms,
              base.p99_ms, base.failed);
  // The authorize phase `runs` times: on a VM the host's speed varies from minute to
  // minute, so one figure says little. Each run prints the CPU per request of server +
  // keyd (what caps throughput on 2 cores) and the share of CPU the hypervisor stole.
  std::vector<Result> results;
  int met = 0;
  for (int run = 1; run <= runs; ++run) {
    const double server_cpu0 = ProcessCpuMs(server_pid),
                 keyd_cpu0 = keyd_pid > 0 ? ProcessCpuMs(keyd_pid) : 0,
                 server_cs0 = toani::bench::ProcessContextSwitches(server_pid),
                 client_cpu0 = ProcessCpuMs(::getpid());
    const toani::bench::MachineCpu machine0 = toani::bench::ReadMachineCpu();
    Result auth = Load(port, pki, conns, seconds, authz, 200);
    const double steal = toani::bench::StealPercent(machine0, toani::bench::ReadMachineCpu());
    const double requests = static_cast<double>(std::max<size_t>(auth.done, 1));
    const double server_cpu = (ProcessCpuMs(server_pid) - server_cpu0) / requests;
    const double keyd_cpu = keyd_pid > 0 ? (ProcessCpuMs(keyd_pid) - keyd_cpu0) / requests : 0;
    const double server_cs =
        (toani::bench::ProcessContextSwitches(server_pid) - server_cs0) / requests;
    const double client_cpu = (ProcessCpuMs(::getpid()) - client_cpu0) / requests;
    char cpu[64];
    std::snprintf(cpu, sizeof cpu, "%.3f+%.3f+%.3f", server_cpu, keyd_cpu, client_cpu);
    const std::string name = "POST /v1/authorize, run " + std::to_string(run);
    std::printf("%-34s %12.0f %10.2f %10.2f %8zu %20s %9.1f %9.1f\n", name.c_str(), auth.rps,
                auth.p50_ms, auth.p99_ms, auth.failed, cpu, server_cs, steal);
    met += auth.rps >= 3000 && auth.p99_ms < 10 && auth.failed == 0;
    results.push_back(auth);
  }
  std::vector<double> rps, p99;
  for (const Result& r : results) rps.push_back(r.rps), p99.push_back(r.p99_ms);
  std::sort(rps.begin(), rps.end());
  std::sort(p99.begin(), p99.end());
  std::printf("authorize over %d runs: median %.0f req/s, median p99 %.2f ms; target met in %d\n",
              runs, rps[rps.size() / 2], p99[p99.size() / 2], met);
  std::printf(
      "(CPU/req: server + keyd + load generator CPU time per request; cs/req: the server's context "
      "switches "
      "per request; steal: CPU the hypervisor took, runs are comparable only when it is near "
      "0)\n");
  std::printf("peak RSS: server %ld KiB, keyd %ld KiB\n", PeakRssKb(server_pid),
              keyd_pid > 0 ? PeakRssKb(keyd_pid) : -1L);
  std::printf("targets: authorize >= 3000 req/s on 2 cores, p99 < 10 ms\n");
  h.Stop();
  return 0;
}
