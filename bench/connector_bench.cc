// End-to-end execution latency of the http connector through a real `toani server
// --dev` (token verify in keyd, replay store, audit start, fresh bwrap sandbox, egress
// proxy, credential release, HTTPS request, scrubbing, audit finish), beside a direct
// HTTPS call to the same local target from this process, in the same run.
// A load generator, not Google Benchmark: it reports p50/p99 and throughput.
// Usage: connector_bench [iterations=200] [concurrency=2]   (figures: docs/performance.md)
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
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "common/http_client.h"

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
      // "authorization: bearer " (case-insensitive name and scheme) + the exact secret.
      const bool ok = lower.find("\r\nauthorization: bearer ") != std::string::npos &&
                      req.find(expected_.substr(22)) != std::string::npos;
      std::string body = R"({"balance":"1234.56","currency":"EUR","account":"12345678","note":")" +
                         std::string(120, 'x') + "\"}";
      std::string resp =
          std::string("HTTP/1.1 ") + (ok ? "200 OK" : "401 Unauthorized") +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(c);
  }
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

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
  const int concurrency = argc > 2 ? std::atoi(argv[2]) : 2;
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
  uint8_t raw[24];
  randombytes_buf(raw, sizeof raw);
  const std::string secret =
      "tok_" + toani::Base64UrlEncode(std::span<const uint8_t>(raw, sizeof raw));
  Target target(cert, key, secret);
  const std::string port = std::to_string(target.port());
  const std::string url = "https://bank.toani.test:" + port + "/v1/balance";

  // The server, as a user runs it.
  const std::string data = dir + "/data";
  const pid_t server = ::fork();
  if (server == 0) {
    const std::string bin = std::string(TOANI_BIN_DIR) + "/toani";
    const std::string log = dir + "/server.log";
    FILE* f = std::freopen(log.c_str(), "w", stderr);
    (void)f;
    ::execl(bin.c_str(), bin.c_str(), "server", "--dev", "--data", data.c_str(), "--listen",
            "127.0.0.1:0", "--connector-ca", cert.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string address;
  for (int i = 0; i < 600 && address.empty(); ++i) {
    std::ifstream in(data + "/server.json");
    json j = json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("address"))
      address = j["address"];
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int rc = 1;
  if (address.empty()) {
    std::fprintf(stderr, "server did not start (see %s/server.log)\n", dir.c_str());
  } else {
    auto tls = [&](const std::string& who) {
      return toani::ClientTls{data + "/pki/ca.pem", data + "/pki/" + who + ".pem",
                              data + "/pki/" + who + "-key.pem"};
    };
    auto call = [&](const std::string& who, const std::string& path, const json& body) {
      auto r = toani::HttpsCall("POST", address + path, body.dump(), "application/json", tls(who));
      return r.ok() ? json::parse(r->body, nullptr, false) : json();
    };
    auto keyd = toani::HttpsCall("GET", address + "/v1/keyd", "", "", tls("admin"));
    auto pk = toani::Base64UrlDecodeStrict(
        json::parse(keyd->body)["intake_public_key"].get<std::string>());
    toani::Bytes sealed(secret.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), toani::AsBytes(secret).data(), secret.size(), pk->data());
    json cred =
        call("admin", "/v1/credentials",
             {{"name", "bench"}, {"type", "api_key"}, {"sealed", toani::Base64UrlEncode(sealed)}});
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
            {"egress", {{{"host", "bank.toani.test"}, {"port", target.port()}}}}}}}}};
    call("admin", "/v1/policies", pol);

    const std::string resolve = "bank.toani.test:" + port + ":127.0.0.1";
    const std::string auth = "Authorization: Bearer " + secret;
    std::vector<double> direct, e2e;
    int failures = 0;
    // Warm-up.
    DirectCall(url, resolve, cert, auth);
    auto one_execution = [&](double* ms) {
      json tok =
          call("agent", "/v1/authorize", {{"action", "bank.balance"}, {"params", json::object()}});
      const auto t0 = Clock::now();
      json out = call("agent", "/v1/executions",
                      {{"token", tok.value("token", "")}, {"params", json::object()}});
      *ms = Ms(Clock::now() - t0);
      return out.contains("result") && out["result"].value("status", 0) == 200;
    };
    double warm = 0;
    one_execution(&warm);
    for (int i = 0; i < iterations; ++i) {
      auto t0 = Clock::now();
      if (!DirectCall(url, resolve, cert, auth)) ++failures;
      direct.push_back(Ms(Clock::now() - t0));
      double ms = 0;
      if (!one_execution(&ms)) ++failures;
      e2e.push_back(ms);
    }
    // Throughput: `concurrency` clients for the same number of executions / calls.
    auto run_parallel = [&](auto fn) {
      std::atomic<int> left{iterations};
      const auto t0 = Clock::now();
      std::vector<std::thread> ts;
      for (int c = 0; c < concurrency; ++c) {
        ts.emplace_back([&] {
          while (left.fetch_sub(1) > 0) fn();
        });
      }
      for (auto& t : ts) t.join();
      return iterations / std::chrono::duration<double>(Clock::now() - t0).count();
    };
    const double direct_tput = run_parallel([&] { DirectCall(url, resolve, cert, auth); });
    std::atomic<int> par_fail{0};
    const double e2e_tput = run_parallel([&] {
      double ms = 0;
      if (!one_execution(&ms)) ++par_fail;
    });
    const Stats d = Summarise(direct), e = Summarise(e2e);
    std::printf(
        "http connector end-to-end vs direct call, %d sequential iterations each, "
        "%d clients for throughput\n",
        iterations, concurrency);
    std::printf("%-34s %10s %10s %10s %14s\n", "", "p50 ms", "p99 ms", "mean ms", "throughput/s");
    std::printf("%-34s %10.2f %10.2f %10.2f %14.1f\n", "direct HTTPS call (baseline)", d.p50, d.p99,
                d.mean, direct_tput);
    std::printf("%-34s %10.2f %10.2f %10.2f %14.1f\n", "POST /v1/executions (http)", e.p50, e.p99,
                e.mean, e2e_tput);
    std::printf("%-34s %10.2f %10.2f %10.2f\n", "overhead", e.p50 - d.p50, e.p99 - d.p99,
                e.mean - d.mean);
    std::printf("failures: %d sequential, %d parallel; target p50 overhead < 15 ms: %s\n", failures,
                par_fail.load(), e.p50 - d.p50 < 15 ? "met" : "NOT met");
    rc = failures == 0 && par_fail == 0 ? 0 : 1;
  }
  ::kill(server, SIGTERM);
  int st = 0;
  ::waitpid(server, &st, 0);
  fs::remove_all(dir);
  curl_global_cleanup();
  return rc;
}
