// End-to-end execution latency of the http connector through a real `toani server
// --dev` (token verify in keyd, replay store, audit start, fresh bwrap sandbox, egress
// proxy, credential release, HTTPS request, scrubbing, audit finish), beside a direct
// HTTPS call to the same local target from this process, in the same run.
// A load generator, not Google Benchmark: it reports p50/p99 and throughput, once with
// the sandbox pool off (sandbox_pool_size 0: every execution starts its own sandbox) and
// once with it on, and where the time of an execution goes (the server's per-phase
// timing_us). Then the browser connector's login-and-extract time through the same
// server: Chromium in its sandbox logs into a legacy cookie login page on the target and
// extracts a value behind the login.
// Usage: connector_bench [iterations=200] [concurrency=2] [pool_size=2] [browser_runs=3]
// (figures: docs/performance.md)
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "common/http_client.h"
#include "keepalive_client.h"
#include "policy/signing.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// A small HTTPS target on 127.0.0.1: one thread per connection, answers 200 with a
// 200-byte JSON body when the Authorization header is the expected one.
class Target {
 public:
  Target(const std::string& cert, const std::string& key, std::string expected)
      : expected_("authorization: Bearer " + std::move(expected)) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 128);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Target() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) std::thread([this, c] { Serve(c); }).detach();
    }
  }
  void Serve(int c) {
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) == 1) {
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string lower = req;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      // A body (the login form's POST): read Content-Length bytes.
      const size_t head_end = req.find("\r\n\r\n");
      const size_t cl = lower.find("\r\ncontent-length: ");
      if (head_end != std::string::npos && cl != std::string::npos && cl < head_end) {
        const size_t want = head_end + 4 + std::strtoul(lower.c_str() + cl + 18, nullptr, 10);
        while (req.size() < want) {
          const int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) break;
          req.append(buf, static_cast<size_t>(n));
        }
      }
      const std::string resp = Answer(req, lower);
      SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(c);
  }
  static std::string Response(const std::string& status, const std::string& type,
                              const std::string& body, const std::string& extra = "") {
    return "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
           "Connection: close\r\n\r\n" + body;
  }
  std::string Answer(const std::string& req, const std::string& lower) {
    if (req.rfind("GET /v1/balance ", 0) == 0) {
      // "authorization: bearer " (case-insensitive name and scheme) + the exact secret.
      const bool ok = lower.find("\r\nauthorization: bearer ") != std::string::npos &&
                      req.find(expected_.substr(22)) != std::string::npos;
      std::string body = R"({"balance":"1234.56","currency":"EUR","account":"12345678","note":")" +
                         std::string(120, 'x') + "\"}";
      return Response(ok ? "200 OK" : "401 Unauthorized", "application/json", body);
    }
    // The legacy login page of the browser benchmark.
    if (req.rfind("GET /login ", 0) == 0) {
      return Response("200 OK", "text/html",
                      "<!doctype html><title>Login</title><form method=post action=/login>"
                      "<input id=user name=user><input id=password name=password "
                      "type=password><button id=submit type=submit>Log in</button></form>");
    }
    if (req.rfind("POST /login ", 0) == 0) {
      const std::string body = req.substr(req.find("\r\n\r\n") + 4);
      const bool ok = body == "user=" + login_user_ + "&password=" + login_password_;
      return Response("303 See Other", "text/plain", "",
                      ok ? "Location: /account\r\nSet-Cookie: sid=" + session_ +
                               "; Path=/; Secure; HttpOnly\r\n"
                         : "Location: /login\r\n");
    }
    if (req.rfind("GET /account ", 0) == 0) {
      if (lower.find("\r\ncookie: sid=" + session_) == std::string::npos) {
        return Response("303 See Other", "text/plain", "", "Location: /login\r\n");
      }
      return Response("200 OK", "text/html",
                      "<!doctype html><title>Account</title><p>Balance: "
                      "<span id=balance>4242.17 EUR</span></p>");
    }
    return Response("404 Not Found", "text/plain", "not found");
  }

 public:
  std::string login_user_ = "alice", login_password_, session_;

 private:
  SSL_CTX* ctx_;
  int fd_;
  uint16_t port_ = 0;
  std::string expected_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

size_t Discard(char*, size_t s, size_t n, void*) { return s * n; }

// The baseline: the same request, a new connection and TLS handshake each time, as the
// connector makes it (but from this process, without sandbox, proxy, keyd or audit).
bool DirectCall(const std::string& url, const std::string& resolve, const std::string& ca,
                const std::string& auth) {
  CURL* h = curl_easy_init();
  curl_slist* hosts = curl_slist_append(nullptr, resolve.c_str());
  curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_RESOLVE, hosts);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Discard);
  long status = 0;
  const bool ok = curl_easy_perform(h) == CURLE_OK &&
                  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
                  status == 200;
  curl_slist_free_all(hosts);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return ok;
}

struct Stats {
  double p50, p99, mean;
};
Stats Summarise(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  auto pct = [&](double p) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  };
  return {pct(0.50), pct(0.99), sum / static_cast<double>(ms.size())};
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Median per phase of the server's execution_finished timing_us (docs/performance.md).
struct Phase {
  std::string name;
  double median_ms;
  size_t count;  // executions that had this phase
};
// Over the executions whose id is in `only` (all when empty).
std::vector<Phase> PhaseMedians(const std::string& log, const std::set<std::string>& only) {
  std::ifstream in(log);
  std::map<std::string, std::vector<double>> phases;
  std::vector<std::string> order;
  for (std::string line; std::getline(in, line);) {
    if (line.find("execution_finished") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (!only.empty() && !only.count(j.value("execution_id", ""))) continue;
    for (const char* field : {"timing_us", "connector_timing_us"}) {
      if (!j.contains(field) || !j[field].is_object()) continue;
      // The connector's own figures (inside connector_run) are shown indented.
      const std::string prefix = std::string(field) == "timing_us" ? "" : "  connector.";
      for (auto& [k, v] : j[field].items()) {
        if (!phases.count(prefix + k)) order.push_back(prefix + k);
        phases[prefix + k].push_back(v.get<double>() / 1000.0);
      }
    }
  }
  std::vector<Phase> out;
  for (const std::string& k : order) {
    auto& v = phases[k];
    std::sort(v.begin(), v.end());
    out.push_back({k, v[v.size() / 2], v.size()});
  }
  return out;
}

// Ids of the executions that took a pre-started sandbox (phase sandbox_take).
std::vector<std::string> PooledExecutions(const std::string& log) {
  std::ifstream in(log);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (line.find("execution_finished") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("timing_us") || !j["timing_us"].is_object()) continue;
    if (j["timing_us"].contains("sandbox_take")) out.push_back(j.value("execution_id", ""));
  }
  return out;
}

struct Server {
  pid_t pid = -1;
  std::string data, log, address;
};

Server StartServer(const std::string& dir, const std::string& name, const std::string& cert,
                   int pool_size) {
  Server s;
  s.data = dir + "/" + name;
  s.log = dir + "/" + name + ".log";
  const std::string config = dir + "/" + name + ".json";
  {
    std::ofstream c(config);
    c << json{{"sandbox_pool_size", pool_size}, {"rate_limit_rps", 0}}.dump();
  }
  s.pid = ::fork();
  if (s.pid == 0) {
    const std::string bin = std::string(TOANI_BIN_DIR) + "/toani";
    FILE* f = std::freopen(s.log.c_str(), "w", stderr);
    (void)f;
    ::execl(bin.c_str(), bin.c_str(), "server", "--dev", "--data", s.data.c_str(), "--listen",
            "127.0.0.1:0", "--connector-ca", cert.c_str(), "--config", config.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 600 && s.address.empty(); ++i) {
    std::ifstream in(s.data + "/server.json");
    json j = json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("address"))
      s.address = j["address"];
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return s;
}

void StopServer(Server& s) {
  if (s.pid <= 0) return;
  ::kill(s.pid, SIGTERM);
  int st = 0;
  ::waitpid(s.pid, &st, 0);
  s.pid = -1;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
  const int concurrency = argc > 2 ? std::atoi(argv[2]) : 2;
  const int pool_size = argc > 3 ? std::atoi(argv[3]) : 2;
  const int browser_runs = argc > 4 ? std::atoi(argv[4]) : 3;
  if (iterations <= 0 || concurrency <= 0 || pool_size < 0 || browser_runs < 0) {
    std::fprintf(stderr,
                 "usage: connector_bench [iterations=200] [concurrency=2] [pool_size=2] "
                 "[browser_runs=3]\n");
    return 2;
  }
  if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/toani-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  ::chmod(dir.c_str(), 0755);
  const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  const std::string gen =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=bench -addext subjectAltName=DNS:bank.toani.test -keyout " +
      key + " -out " + cert + " 2>/dev/null";
  if (std::system(gen.c_str()) != 0) return 1;
  ::chmod(cert.c_str(), 0644);
  auto random_token = [] {
    uint8_t raw[24];
    randombytes_buf(raw, sizeof raw);
    return toani::HexEncode(std::span<const uint8_t>(raw, sizeof raw));
  };
  const std::string secret = "tok_" + random_token();
  Target target(cert, key, secret);
  target.login_password_ = "pw" + random_token();
  target.session_ = random_token();
  const std::string port = std::to_string(target.port());
  const std::string url = "https://bank.toani.test:" + port + "/v1/balance";
  const std::string resolve = "bank.toani.test:" + port + ":127.0.0.1";
  const std::string auth = "Authorization: Bearer " + secret;
  DirectCall(url, resolve, cert, auth);  // warm-up

  struct ModeResult {
    int pool = 0;
    bool started = false;
    Stats direct{}, e2e{}, fresh{}, e2e_hit{};
    int hits = 0;  // sequential executions that took a pre-started sandbox
    double direct_tput = 0, e2e_tput = 0;
    int failures = 0, par_failures = 0;
    std::vector<Phase> phases;
    std::vector<double> browser_ms;
    int browser_failures = 0;
  };
  std::vector<ModeResult> modes;
  std::vector<int> pools = {0};
  if (pool_size > 0) pools.push_back(pool_size);
  for (int pool : pools) {
    ModeResult m;
    m.pool = pool;
    Server server = StartServer(dir, "pool" + std::to_string(pool), cert, pool);
    if (server.address.empty()) {
      std::fprintf(stderr, "server did not start (see %s)\n", server.log.c_str());
      StopServer(server);
      modes.push_back(m);
      continue;
    }
    m.started = true;
    auto tls = [&](const std::string& who) {
      return toani::ClientTls{server.data + "/pki/ca.pem", server.data + "/pki/" + who + ".pem",
                              server.data + "/pki/" + who + "-key.pem"};
    };
    auto call = [&](const std::string& who, const std::string& path, const json& body) {
      auto r = toani::HttpsCall("POST", server.address + path, body.dump(), "application/json",
                                tls(who));
      return r.ok() ? json::parse(r->body, nullptr, false) : json();
    };
    auto keyd = toani::HttpsCall("GET", server.address + "/v1/keyd", "", "", tls("admin"));
    auto pk = toani::Base64UrlDecodeStrict(
        json::parse(keyd->body)["intake_public_key"].get<std::string>());
    auto add_credential = [&](const std::string& name, const std::string& type,
                              const std::string& plain) {
      toani::Bytes sealed(plain.size() + crypto_box_SEALBYTES);
      crypto_box_seal(sealed.data(), toani::AsBytes(plain).data(), plain.size(), pk->data());
      return call("admin", "/v1/credentials",
                  {{"name", name}, {"type", type}, {"sealed", toani::Base64UrlEncode(sealed)}});
    };
    json cred = add_credential("bench", "api_key", secret);
    json login = add_credential(
        "bench-login", "password",
        json{{"username", target.login_user_}, {"password", target.login_password_}}.dump());
    const json egress = {{{"host", "bank.toani.test"}, {"port", target.port()}}};
    const std::string base = "https://bank.toani.test:" + port;
    json pol = {
        {"policy_id", "bench"},
        {"version", 1},
        {"actions",
         {{"bank.balance",
           {{"agents", {"demo-agent"}},
            {"connector", "http"},
            {"credential", cred["id"]},
            {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
            {"request", {{"method", "GET"}, {"url", url}}},
            {"egress", egress}}},
          {"bank.login_extract",
           {{"agents", {"demo-agent"}},
            {"connector", "browser"},
            {"credential", login["id"]},
            {"browser",
             {{"step_timeout_ms", 30000},
              {"steps",
               {{{"goto", base + "/login"}},
                {{"fill", "#user"}, {"credential_field", "username"}},
                {{"fill", "#password"}, {"credential_field", "password"}},
                {{"click", "#submit"}},
                {{"wait_for", "#balance"}},
                {{"extract", "#balance"}, {"as", "balance"}}}}}},
            {"egress", egress}}}}}};
    // Policies are signed by a policy-admin key the operator registered (issue 5).
    const toani::policy::PolicyKeyPair policy_key = toani::policy::GeneratePolicyKey();
    call("admin", "/v1/policy-keys", {{"public_key", policy_key.public_key}, {"name", "bench"}});
    auto envelope = toani::policy::SignPolicy(pol, policy_key.secret);
    json applied = envelope.ok() ? call("admin", "/v1/policies", *envelope) : json();
    if (!applied.contains("version") && !applied.contains("policy_id")) {
      std::fprintf(stderr, "policy not applied: %s\n", applied.dump().c_str());
    }

    // The agent's side: an SDK keeps its mTLS connection to the server alive, so each
    // bench client owns one KeepAliveClient and sends authorize + execute over it. Only
    // POST /v1/executions is timed. `fresh`: a new mTLS connection for each request
    // instead (toani::HttpsCall: TCP + TLS 1.3 handshake with client certificate).
    const int server_port = std::stoi(server.address.substr(server.address.rfind(':') + 1));
    const std::string pki = server.data + "/pki";
    auto execute = [&](toani::bench::KeepAliveClient* agent, const std::string& action,
                       double* ms) {
      const json authz = {{"action", action}, {"params", json::object()}};
      json tok, out;
      if (agent == nullptr) {
        tok = call("agent", "/v1/authorize", authz);
      } else {
        auto r = agent->Post("/v1/authorize", authz.dump());
        tok = json::parse(r.body, nullptr, false);
      }
      const json body = {{"token", tok.is_object() ? tok.value("token", "") : std::string()},
                         {"params", json::object()}};
      const auto t0 = Clock::now();
      if (agent == nullptr) {
        out = call("agent", "/v1/executions", body);
      } else {
        out = json::parse(agent->Post("/v1/executions", body.dump()).body, nullptr, false);
      }
      *ms = Ms(Clock::now() - t0);
      return out.is_object() ? out : json::object();
    };
    std::mutex ids_mu;
    std::set<std::string> sequential_ids;
    std::map<std::string, double> sequential_ms;
    auto one_execution = [&](toani::bench::KeepAliveClient* agent, double* ms,
                             bool sequential = false) {
      json out = execute(agent, "bank.balance", ms);
      if (sequential) {
        std::lock_guard<std::mutex> lock(ids_mu);
        sequential_ids.insert(out.value("execution_id", ""));
        sequential_ms[out.value("execution_id", "")] = *ms;
      }
      const bool ok = out.contains("result") && out["result"].value("status", 0) == 200;
      if (!ok) std::fprintf(stderr, "execution failed: %s\n", out.dump().c_str());
      return ok;
    };
    toani::bench::KeepAliveClient agent(server_port, pki, "agent");
    if (!agent.Connect()) std::fprintf(stderr, "keep-alive connection to the server failed\n");
    double warm = 0;
    one_execution(&agent, &warm);
    // Timing starts with a full pool (the refill runs after each answer, at low priority).
    auto wait_pool_ready = [&] {
      for (int i = 0; i < 200 && pool > 0; ++i) {
        auto r = toani::HttpsCall("GET", server.address + "/readyz", "", "", tls("admin"));
        json j = r.ok() ? json::parse(r->body, nullptr, false) : json();
        if (j.is_object() && j.contains("sandbox_pool") &&
            j["sandbox_pool"].value("ready", 0) >= pool)
          return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    };
    wait_pool_ready();
    std::vector<double> direct, e2e;
    for (int i = 0; i < iterations; ++i) {
      auto t0 = Clock::now();
      if (!DirectCall(url, resolve, cert, auth)) ++m.failures;
      direct.push_back(Ms(Clock::now() - t0));
      double ms = 0;
      if (!one_execution(&agent, &ms, /*sequential=*/true)) ++m.failures;
      e2e.push_back(ms);
    }
    // The same over a new mTLS connection per request (what an agent without
    // keep-alive pays; a quarter of the iterations).
    std::vector<double> fresh;
    for (int i = 0; i < std::max(10, iterations / 4); ++i) {
      double ms = 0;
      if (!one_execution(nullptr, &ms)) ++m.failures;
      fresh.push_back(ms);
    }
    // Throughput: `concurrency` clients for the same number of executions / calls.
    auto run_parallel = [&](auto fn) {
      std::atomic<int> left{iterations};
      const auto t0 = Clock::now();
      std::vector<std::thread> ts;
      for (int c = 0; c < concurrency; ++c) {
        ts.emplace_back([&] {
          toani::bench::KeepAliveClient mine(server_port, pki, "agent");
          mine.Connect();
          while (left.fetch_sub(1) > 0) fn(&mine);
        });
      }
      for (auto& t : ts) t.join();
      return iterations / std::chrono::duration<double>(Clock::now() - t0).count();
    };
    m.direct_tput =
        run_parallel([&](toani::bench::KeepAliveClient*) { DirectCall(url, resolve, cert, auth); });
    wait_pool_ready();
    std::atomic<int> par_fail{0};
    m.e2e_tput = run_parallel([&](toani::bench::KeepAliveClient* mine) {
      double ms = 0;
      if (!one_execution(mine, &ms)) ++par_fail;
    });
    m.par_failures = par_fail.load();
    m.direct = Summarise(direct);
    m.e2e = Summarise(e2e);
    m.fresh = Summarise(fresh);
    // Browser: only once (it never uses the pool, so the figure does not depend on it).
    if (modes.empty() || !modes.front().started) {
      for (int i = 0; i < browser_runs; ++i) {
        double ms = 0;
        json out = execute(&agent, "bank.login_extract", &ms);
        const bool ok =
            out.contains("result") &&
            out["result"].value("extracted", json::object()).value("balance", "") == "4242.17 EUR";
        if (!ok) {
          ++m.browser_failures;
          std::fprintf(stderr, "browser execution failed: %s\n", out.dump().c_str());
        }
        m.browser_ms.push_back(ms);
      }
    }
    StopServer(server);
    m.phases = PhaseMedians(server.log, sequential_ids);
    // The same executions split by whether a pre-started sandbox was ready.
    {
      std::vector<double> hit;
      for (const std::string& id : PooledExecutions(server.log)) {
        if (auto it = sequential_ms.find(id); it != sequential_ms.end()) hit.push_back(it->second);
      }
      if (!hit.empty()) {
        m.hits = static_cast<int>(hit.size());
        m.e2e_hit = Summarise(hit);
      }
    }
    modes.push_back(m);
  }

  int rc = 0;
  std::printf(
      "http connector end-to-end vs direct call, %d sequential iterations each, "
      "%d clients for throughput\n"
      "timed: direct = one HTTPS GET from this process to the target (new TCP + TLS "
      "connection, as the connector makes it);\n"
      "       POST /v1/executions = the agent's execute request over its kept-alive mTLS "
      "connection to the server, sent to answer received\n"
      "       (token verify, replay, audit start, sandbox, keyd release, the connector's "
      "own HTTPS GET to the target, scrub, audit finish)\n",
      iterations, concurrency);
  std::printf("%-52s %9s %9s %9s %13s\n", "", "p50 ms", "p99 ms", "mean ms", "throughput/s");
  for (const ModeResult& m : modes) {
    if (!m.started) {
      rc = 1;
      continue;
    }
    const std::string label = "sandbox_pool_size=" + std::to_string(m.pool);
    std::printf("%-52s %9.2f %9.2f %9.2f %13.1f\n",
                ("direct HTTPS call (baseline, " + label + " run)").c_str(), m.direct.p50,
                m.direct.p99, m.direct.mean, m.direct_tput);
    std::printf("%-52s %9.2f %9.2f %9.2f %13.1f\n",
                ("POST /v1/executions keep-alive, " + label).c_str(), m.e2e.p50, m.e2e.p99,
                m.e2e.mean, m.e2e_tput);
    std::printf("%-52s %9.2f %9.2f %9.2f\n", ("overhead, " + label).c_str(),
                m.e2e.p50 - m.direct.p50, m.e2e.p99 - m.direct.p99, m.e2e.mean - m.direct.mean);
    if (m.pool > 0) {
      std::printf("%-52s %9.2f %9.2f %9.2f   (%d of %d found a sandbox ready)\n",
                  "(info) of which the pool had a sandbox ready", m.e2e_hit.p50, m.e2e_hit.p99,
                  m.e2e_hit.mean, m.hits, iterations);
    }
    std::printf("%-52s %9.2f %9.2f %9.2f\n",
                ("(info) new mTLS connection per request, " + label).c_str(), m.fresh.p50,
                m.fresh.p99, m.fresh.mean);
    std::printf("  failures: %d sequential, %d parallel; target p50 overhead < 15 ms: %s\n",
                m.failures, m.par_failures, m.e2e.p50 - m.direct.p50 < 15 ? "met" : "NOT met");
    if (m.failures != 0 || m.par_failures != 0) rc = 1;
  }
  for (const ModeResult& m : modes) {
    if (m.phases.empty()) continue;
    std::printf(
        "\nwhere the time goes, sandbox_pool_size=%d (median ms over the sequential "
        "keep-alive executions, server's timing_us and the connector's own timing_us, "
        "n = executions with that phase)\n",
        m.pool);
    double total = 0;
    for (const Phase& p : m.phases) {
      std::printf("  %-24s %8.2f  n=%zu\n", p.name.c_str(), p.median_ms, p.count);
      if (p.name[0] != ' ') total += p.median_ms;
    }
    std::printf("  %-24s %8.2f\n", "(sum of server medians)", total);
  }
  for (const ModeResult& m : modes) {
    if (m.browser_ms.empty()) continue;
    const Stats b = Summarise(m.browser_ms);
    std::printf(
        "\nbrowser connector login-and-extract (POST /v1/executions: Chromium in a fresh "
        "sandbox, login page, fill, submit, redirect, extract), %zu runs: p50 %.0f ms, "
        "min %.0f ms, max %.0f ms; failures: %d\n",
        m.browser_ms.size(), b.p50, *std::min_element(m.browser_ms.begin(), m.browser_ms.end()),
        *std::max_element(m.browser_ms.begin(), m.browser_ms.end()), m.browser_failures);
    if (m.browser_failures != 0) rc = 1;
  }
  fs::remove_all(dir);
  curl_global_cleanup();
  return rc;
}
