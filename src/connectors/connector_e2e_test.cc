// End to end: toani-connector in the bwrap sandbox, reaching a local HTTPS server only
// through the egress proxy, with a credential sealed to its hello key.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/encoding.h"
#include "sandbox/egress_proxy.h"
#include "sandbox/sandbox_runner.h"

namespace toani {
namespace {

// ASan reserves terabytes of shadow address space, which RLIMIT_AS forbids.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

using nlohmann::json;
using std::chrono::milliseconds;

// A one-thread HTTPS server on 127.0.0.1. GET /echo answers 200 with the Authorization
// header echoed (raw and base64) when it equals "Bearer <expected>", else 401;
// GET /big answers 200 with 10 000 bytes.
class TlsServer {
 public:
  TlsServer(const std::string& cert, const std::string& key, std::string expected)
      : expected_(std::move(expected)) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    TOANI_CHECK(ctx_ != nullptr);
    TOANI_CHECK(SSL_CTX_use_certificate_chain_file(ctx_.get(), cert.c_str()) == 1);
    TOANI_CHECK(SSL_CTX_use_PrivateKey_file(ctx_.get(), key.c_str(), SSL_FILETYPE_PEM) == 1);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TOANI_CHECK(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    TOANI_CHECK(::listen(fd_, 8) == 0);
    socklen_t len = sizeof a;
    TOANI_CHECK(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TlsServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx_.get()), &SSL_free);
      SSL_set_fd(ssl.get(), c);
      if (SSL_accept(ssl.get()) == 1) Answer(ssl.get());
      SSL_shutdown(ssl.get());
      ::close(c);
    }
  }
  void Answer(SSL* ssl) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    std::string auth;
    std::string lower = req;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const size_t at = lower.find("\r\nauthorization: ");
    if (at != std::string::npos) {
      const size_t start = at + 17;
      auth = req.substr(start, req.find("\r\n", start) - start);
    }
    int status = 401;
    std::string body = "denied";
    if (req.rfind("GET /big ", 0) == 0) {
      status = 200;
      body.assign(10000, 'x');
    } else if (auth == "Bearer " + expected_) {
      status = 200;
      body = json{{"authorization", auth},
                  {"b64", Base64Encode(AsBytes(expected_))},
                  {"hex", HexEncode(AsBytes(expected_))},
                  {"note", "hello from the test server"}}
                 .dump();
    }
    const std::string resp =
        "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Unauthorized") +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, &SSL_CTX_free};
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string expected_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

class ConnectorE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    char tmpl[] = "/tmp/toani-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // the sandbox runs as host uid 65534
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=target.toani.test -addext subjectAltName=DNS:target.toani.test -keyout " +
        dir_ + "/key.pem -out " + dir_ + "/cert.pem 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    ::chmod((dir_ + "/cert.pem").c_str(), 0644);
    // A credential that is safe in a header: 24 random bytes, base64url.
    Bytes raw(24);
    randombytes_buf(raw.data(), raw.size());
    credential_ = "tok_" + Base64UrlEncode(raw);
    server_ = std::make_unique<TlsServer>(dir_ + "/cert.pem", dir_ + "/key.pem", credential_);
    auto proxy = EgressProxy::Start(dir_ + "/egress.sock", {{"target.toani.test", server_->port()}},
                                    {{"target.toani.test", "127.0.0.1"}});
    ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
    proxy_ = std::move(proxy).value();
  }
  void TearDown() override {
    proxy_.reset();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Runs one execution; returns every stdout line (hello, result) and the exit code.
  struct Run {
    std::vector<std::string> lines;
    json result;
    int exit_code = -1;
  };
  Run Execute(const std::string& url, uint64_t max_bytes = 65536) {
    Run run;
    SandboxSpec spec;
    spec.connector_path = TOANI_CONNECTOR_PATH;
    spec.egress_socket_host_path = proxy_->socket_path();
    spec.ro_binds = {{dir_ + "/cert.pem", "/run/toani/ca.pem"}};
    spec.wall_timeout = milliseconds(20000);
    if (kSanitized) spec.address_space_bytes = RLIM_INFINITY;  // shadow memory
    auto proc = MakeBwrapRunner()->Start(spec);
    EXPECT_TRUE(proc.ok()) << proc.status().ToString();
    if (!proc.ok()) return run;
    SandboxProcess& p = **proc;
    auto hello_line = p.ReadLine(milliseconds(10000));
    EXPECT_TRUE(hello_line.ok()) << hello_line.status().ToString() << "\n" << p.Stderr();
    if (!hello_line.ok()) return run;
    run.lines.push_back(*hello_line);
    const json hello = json::parse(*hello_line);
    EXPECT_EQ(hello["type"], "hello");
    auto pk = Base64UrlDecodeStrict(hello["public_key"].get<std::string>());
    EXPECT_TRUE(pk.ok() && pk->size() == crypto_box_PUBLICKEYBYTES);
    if (!pk.ok() || pk->size() != crypto_box_PUBLICKEYBYTES) return run;

    Bytes sealed(crypto_box_SEALBYTES + credential_.size());
    EXPECT_EQ(
        crypto_box_seal(sealed.data(), AsBytes(credential_).data(), credential_.size(), pk->data()),
        0);
    const json job = {
        {"type", "job"},
        {"connector", "http"},
        {"request",
         {{"method", "GET"}, {"url", url}, {"headers", json::array({{"Accept", "*/*"}})}}},
        {"inject", {{"kind", "header"}, {"name", "Authorization"}, {"prefix", "Bearer "}}},
        {"sealed_credential", Base64UrlEncode(sealed)},
        {"proxy_socket", "/run/toani/egress.sock"},
        {"ca_file", "/run/toani/ca.pem"},
        {"limits", {{"max_response_bytes", max_bytes}, {"timeout_ms", 10000}}}};
    EXPECT_TRUE(p.WriteLine(job.dump()).ok());
    auto result_line = p.ReadLine(milliseconds(15000));
    EXPECT_TRUE(result_line.ok()) << result_line.status().ToString() << "\n" << p.Stderr();
    if (!result_line.ok()) return run;
    run.lines.push_back(*result_line);
    run.result = json::parse(*result_line);
    auto code = p.Wait();
    EXPECT_TRUE(code.ok());
    run.exit_code = code.ok() ? *code : -1;
    // Nothing the sandbox says may carry the credential in any common form.
    std::string everything = p.Stderr();
    for (const std::string& l : run.lines) everything += l;
    EXPECT_EQ(everything.find(credential_), std::string::npos);
    EXPECT_EQ(everything.find(Base64Encode(AsBytes(credential_))), std::string::npos);
    EXPECT_EQ(everything.find(Base64UrlEncode(AsBytes(credential_))), std::string::npos);
    EXPECT_EQ(everything.find(HexEncode(AsBytes(credential_))), std::string::npos);
    return run;
  }

  std::string Url(const std::string& path) const {
    return "https://target.toani.test:" + std::to_string(server_->port()) + path;
  }

  std::string dir_;
  std::string credential_;
  std::unique_ptr<TlsServer> server_;
  std::unique_ptr<EgressProxy> proxy_;
};

TEST_F(ConnectorE2ETest, InjectsCredentialAndScrubsTheEcho) {
  const Run run = Execute(Url("/echo"));
  ASSERT_EQ(run.lines.size(), 2u);
  const json& r = run.result;
  EXPECT_EQ(r["type"], "result");
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["status"], 200);  // the server saw exactly the expected credential
  EXPECT_EQ(r["content_type"], "application/json");
  const std::string body = r["body"].get<std::string>();
  const json echoed = json::parse(body);
  EXPECT_EQ(echoed["authorization"], "Bearer [REDACTED]");
  EXPECT_EQ(echoed["b64"], "[REDACTED]");
  EXPECT_EQ(echoed["hex"], "[REDACTED]");
  EXPECT_EQ(echoed["note"], "hello from the test server");
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const uint8_t*>(body.data()), body.size());
  EXPECT_EQ(r["body_sha256"], HexEncode(digest));
  EXPECT_EQ(run.exit_code, 0);
  bool allowed = false;
  for (const std::string& l : proxy_->Log()) {
    allowed |= l.rfind("allow host=target.toani.test", 0) == 0;
  }
  EXPECT_TRUE(allowed);
}

TEST_F(ConnectorE2ETest, HostOutsideAllowListFailsCleanly) {
  const Run run = Execute("https://other.toani.test:" + std::to_string(server_->port()) + "/echo");
  ASSERT_EQ(run.lines.size(), 2u);
  EXPECT_FALSE(run.result["ok"].get<bool>());
  const std::string error = run.result["error"].get<std::string>();
  EXPECT_NE(error.find("request failed"), std::string::npos) << error;
  EXPECT_NE(error.find("SOCKS"), std::string::npos) << error;  // refused at the proxy
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(server_->requests(), 0);
}

TEST_F(ConnectorE2ETest, ResponseLimitEnforced) {
  const Run run = Execute(Url("/big"), 1024);
  ASSERT_EQ(run.lines.size(), 2u);
  EXPECT_FALSE(run.result["ok"].get<bool>());
  EXPECT_NE(run.result["error"].get<std::string>().find("max_response_bytes"), std::string::npos)
      << run.result.dump();
}

}  // namespace
}  // namespace toani
