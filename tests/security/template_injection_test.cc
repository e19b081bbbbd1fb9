// Parameters are data (issue 5): hostile values through every template position —
// path segment, query value, header value, JSON body, form field — go through the
// real server, keyd, a bwrap sandbox, the connector and the egress proxy to an HTTPS
// listener that records the raw request bytes. The test asserts those bytes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/encoding.h"
#include "integration/server_harness.h"
#include "integration/signed_policy.h"
#include "server/pki.h"

namespace toani {
namespace {

using nlohmann::json;

// One-request-per-connection HTTPS listener on 127.0.0.1 that keeps each raw request.
class RecordingTarget {
 public:
  RecordingTarget(const std::string& cert, const std::string& key) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    TOANI_CHECK(ctx_ != nullptr);
    TOANI_CHECK(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) == 1);
    TOANI_CHECK(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TOANI_CHECK(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    TOANI_CHECK(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    TOANI_CHECK(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordingTarget() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{10, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) {
        std::string raw;
        char buf[4096];
        size_t need = std::string::npos;
        while (need == std::string::npos || raw.size() < need) {
          int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) break;
          raw.append(buf, static_cast<size_t>(n));
          size_t end = raw.find("\r\n\r\n");
          if (need == std::string::npos && end != std::string::npos) {
            size_t body = 0;
            std::string lower = raw.substr(0, end);
            for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            size_t cl = lower.find("\r\ncontent-length:");
            if (cl != std::string::npos) body = std::stoul(lower.substr(cl + 17));
            need = end + 4 + body;
          }
        }
        {
          std::lock_guard<std::mutex> l(mu_);
          requests_.push_back(raw);
        }
        const std::string resp =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
            "Connection: close\r\n\r\n{\"ok\":true}";
        SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ::close(c);
    }
  }
  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

std::string Head(const std::string& raw) { return raw.substr(0, raw.find("\r\n\r\n")); }
std::string Body(const std::string& raw) {
  size_t e = raw.find("\r\n\r\n");
  return e == std::string::npos ? "" : raw.substr(e + 4);
}
std::string RequestLine(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }
std::vector<std::string> HeaderLines(const std::string& raw) {
  std::vector<std::string> out;
  std::string h = Head(raw);
  size_t pos = h.find("\r\n");
  while (pos != std::string::npos) {
    size_t next = h.find("\r\n", pos + 2);
    out.push_back(h.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2));
    pos = next;
  }
  return out;
}

class TemplateInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    Status st = server_.Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    const std::string pki = server_.data_dir() + "/pki";
    auto leaf = IssueLeafPem(pki + "/ca.pem", pki + "/ca-key.pem", "inj.toani.test",
                             {"inj.toani.test"}, {}, true);
    ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
    const std::string dir = server_.data_dir() + "/../target";
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/cert.pem") << leaf->first;
    std::ofstream(dir + "/key.pem") << leaf->second;
    target_ = std::make_unique<RecordingTarget>(dir + "/cert.pem", dir + "/key.pem");

    auto keyd = server_.CallJson("admin", "GET", "/v1/keyd");
    ASSERT_TRUE(keyd.ok());
    auto pk = Base64UrlDecodeStrict((*keyd)["intake_public_key"].get<std::string>());
    ASSERT_TRUE(pk.ok());
    const std::string secret = "inj-secret-value-123";
    Bytes sealed(secret.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), AsBytes(secret).data(), secret.size(), pk->data());
    long code = 0;
    auto cred = server_.CallJson("admin", "POST", "/v1/credentials",
                                 {{"name", "k"}, {"type", "api_key"}, {"sealed", Base64UrlEncode(sealed)}},
                                 &code);
    ASSERT_EQ(code, 201);
    const std::string base = "https://inj.toani.test:" + std::to_string(target_->port());
    const json strings = {{"type", "object"},
                          {"additionalProperties", false},
                          {"properties",
                           {{"seg", {{"type", "string"}}},
                            {"q", {{"type", "string"}}},
                            {"note", {{"type", "string"}}},
                            {"val", {{"type", "string"}}}}}};
    const json egress = {{{"host", "inj.toani.test"}, {"port", target_->port()}}};
    json policy = {
        {"policy_id", "inj"},
        {"version", 1},
        {"actions",
         {{"inj.json",
           {{"agents", {"demo-agent"}},
            {"connector", "http"},
            {"credential", (*cred)["id"]},
            {"request",
             {{"method", "POST"},
              {"url", base + "/v1/items/{{seg}}/sub"},
              {"query", {{"q", "{{q}}"}}},
              {"headers", {{"X-Note", "{{note}}"}}},
              {"body", {{"value", "{{val}}"}, {"memo", "m:{{val}}"}}}}},
            {"params", strings},
            {"egress", egress}}},
          {"inj.form",
           {{"agents", {"demo-agent"}},
            {"connector", "http"},
            {"credential", (*cred)["id"]},
            {"request",
             {{"method", "POST"},
              {"url", base + "/v1/form/{{seg}}"},
              {"form", {{"field", "{{val}}"}, {"other", "fixed"}}}}},
            {"params", strings},
            {"egress", egress}}}}}};
    auto applied = testing::PolicySigner(server_).Apply(policy, &code);
    ASSERT_EQ(code, 201) << (applied.ok() ? applied->dump() : applied.status().ToString());
  }

  // Authorizes and executes; returns the raw request the target received.
  std::string Send(const std::string& action, const json& params) {
    long code = 0;
    auto auth = server_.CallJson("agent", "POST", "/v1/authorize",
                                 {{"action", action}, {"params", params}}, &code);
    EXPECT_EQ(code, 200) << auth->dump();
    if (code != 200) return "";
    const size_t before = target_->requests().size();
    auto exe = server_.CallJson("agent", "POST", "/v1/executions",
                                {{"token", (*auth)["token"]}, {"params", params}}, &code);
    EXPECT_EQ(code, 200) << exe->dump();
    EXPECT_TRUE(exe->contains("result")) << exe->dump();
    auto reqs = target_->requests();
    EXPECT_EQ(reqs.size(), before + 1);
    return reqs.size() > before ? reqs.back() : "";
  }

  testing::ServerHarness server_;
  std::unique_ptr<RecordingTarget> target_;
};

TEST_F(TemplateInjectionTest, EveryPositionEncodesHostileValuesAsData) {
  // Path traversal, query/fragment injection and authority tricks in a path segment;
  // parameter injection in a query value; JSON breaking in the body.
  const std::string val = "\"}, \"admin\": true, {\"x\": \"\\";
  json p = {{"seg", "../../admin?x=1#f"}, {"q", "1&admin=true#x+y %"}, {"note", "ok; X-Evil: 1"},
            {"val", val}};
  std::string raw = Send("inj.json", p);
  ASSERT_FALSE(raw.empty());
  EXPECT_EQ(RequestLine(raw),
            "POST /v1/items/..%2F..%2Fadmin%3Fx%3D1%23f/sub?q=1%26admin%3Dtrue%23x%2By%20%25 HTTP/1.1");
  auto headers = HeaderLines(raw);
  EXPECT_NE(std::find(headers.begin(), headers.end(), "X-Note: ok; X-Evil: 1"), headers.end());
  for (const auto& h : headers) EXPECT_NE(h.rfind("X-Evil", 0), 0u) << h;
  EXPECT_NE(std::find(headers.begin(), headers.end(), "Host: inj.toani.test:" + std::to_string(target_->port())),
            headers.end());
  const std::string want_body = json{{"memo", "m:" + val}, {"value", val}}.dump();
  EXPECT_EQ(Body(raw), want_body);
  json body = json::parse(Body(raw));
  EXPECT_EQ(body.size(), 2u);
  EXPECT_FALSE(body.contains("admin"));
  EXPECT_EQ(body["value"], val);

  // ".." alone, userinfo/port tricks and non-ASCII in a path segment.
  raw = Send("inj.json", {{"seg", ".."}, {"q", ""}, {"note", ""}, {"val", ""}});
  EXPECT_EQ(RequestLine(raw), "POST /v1/items/%2E%2E/sub?q= HTTP/1.1");
  raw = Send("inj.json", {{"seg", "x@evil.example:443/\xc3\xa9"}, {"q", "a=b"}, {"note", "n"}, {"val", "v"}});
  EXPECT_EQ(RequestLine(raw), "POST /v1/items/x%40evil.example%3A443%2F%C3%A9/sub?q=a%3Db HTTP/1.1");

  // Form fields: '&' and '=' cannot add a field.
  raw = Send("inj.form", {{"seg", "s"}, {"val", "x&admin=1=2%+"}});
  EXPECT_EQ(RequestLine(raw), "POST /v1/form/s HTTP/1.1");
  EXPECT_EQ(Body(raw), "field=x%26admin%3D1%3D2%25%2B&other=fixed");
  headers = HeaderLines(raw);
  EXPECT_NE(std::find(headers.begin(), headers.end(), "Content-Type: application/x-www-form-urlencoded"),
            headers.end());
}

TEST_F(TemplateInjectionTest, HeaderCrLfIsRefusedBeforeAnythingIsSent) {
  const std::vector<std::string> notes = {"ok\r\nX-Injected: 1", "ok\nX-Injected: 1",
                                         std::string("a\0b", 3), "tab\tok"};
  for (const std::string& note : notes) {
    long code = 0;
    auto auth = server_.CallJson(
        "agent", "POST", "/v1/authorize",
        {{"action", "inj.json"}, {"params", {{"seg", "s"}, {"q", "q"}, {"note", note}, {"val", "v"}}}},
        &code);
    EXPECT_EQ(code, 403) << auth->dump();
    EXPECT_NE(auth->value("detail", "").find("control character"), std::string::npos) << auth->dump();
  }
  EXPECT_TRUE(target_->requests().empty());
}

}  // namespace
}  // namespace toani
