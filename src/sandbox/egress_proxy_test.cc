#include "sandbox/egress_proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/ip_address.h"

namespace toani {
namespace {

class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ScopedFd(ScopedFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool SendAll(int fd, const std::vector<uint8_t>& b) {
  return ::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size());
}

// Reads exactly n bytes or returns what came before EOF/timeout (2 s).
std::vector<uint8_t> RecvN(int fd, size_t n) {
  std::vector<uint8_t> out;
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    uint8_t buf[256];
    const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) break;
    out.insert(out.end(), buf, buf + r);
  }
  return out;
}

// A loopback TCP server that echoes every connection until the test ends.
class EchoServer {
 public:
  EchoServer() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    TOANI_CHECK(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    TOANI_CHECK(::listen(fd_.get(), 16) == 0);
    socklen_t len = sizeof a;
    TOANI_CHECK(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        ScopedFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        char buf[256];
        ssize_t n;
        while ((n = ::recv(c.get(), buf, sizeof buf, 0)) > 0) ::send(c.get(), buf, n, MSG_NOSIGNAL);
      }
    });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  ScopedFd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class EgressProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/toani-egress-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/egress.sock";
    const uint16_t p = echo_.port();
    auto proxy = EgressProxy::Start(
        path_,
        {{"target.toani.test", p}, {"*.wild.test", p}, {"localhost", p}, {"nowhere.invalid", p}},
        {{"target.toani.test", "127.0.0.1"}, {"*.wild.test", "127.0.0.1"}},
        // These tests exercise the SOCKS layer with a plain echo; the SNI check has its
        // own cases in tests/security/ssrf_test.cc.
        [] {
          EgressProxyOptions o;
          o.require_tls_sni = false;
          // "localhost" must resolve to loopback even on a host without /etc/hosts
          // (a minimal Debian root has none); every other name goes to getaddrinfo.
          o.resolver = [](const std::string& host) -> StatusOr<std::vector<std::string>> {
            if (host == "localhost") return std::vector<std::string>{"127.0.0.1", "::1"};
            addrinfo hints{};
            hints.ai_socktype = SOCK_STREAM;
            addrinfo* res = nullptr;
            if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) {
              return Status::NotFound("cannot resolve " + host);
            }
            std::vector<std::string> out;
            for (addrinfo* a = res; a != nullptr; a = a->ai_next)
              out.push_back(AddressToString(a->ai_addr));
            ::freeaddrinfo(res);
            return out;
          };
          return o;
        }());
    ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
    proxy_ = std::move(proxy).value();
  }
  void TearDown() override {
    proxy_.reset();
    ::rmdir(dir_.c_str());
  }

  ScopedFd Connect() {
    ScopedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    TOANI_CHECK(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
  }

  // Greets with no-auth, sends CONNECT with the given address bytes; returns the reply
  // code (REP) or -1 if none came.
  int SocksConnect(int fd, uint8_t atyp, const std::vector<uint8_t>& addr, uint16_t port,
                   uint8_t cmd = 1) {
    if (!SendAll(fd, {5, 1, 0})) return -1;
    if (RecvN(fd, 2) != std::vector<uint8_t>{5, 0}) return -1;
    std::vector<uint8_t> req = {5, cmd, 0, atyp};
    req.insert(req.end(), addr.begin(), addr.end());
    req.push_back(static_cast<uint8_t>(port >> 8));
    req.push_back(static_cast<uint8_t>(port & 0xFF));
    if (!SendAll(fd, req)) return -1;
    const std::vector<uint8_t> reply = RecvN(fd, 10);
    if (reply.size() != 10 || reply[0] != 5) return -1;
    return reply[1];
  }

  int ConnectName(const std::string& host, uint16_t port, ScopedFd* keep = nullptr) {
    ScopedFd fd = Connect();
    std::vector<uint8_t> addr = {static_cast<uint8_t>(host.size())};
    addr.insert(addr.end(), host.begin(), host.end());
    const int rep = SocksConnect(fd.get(), 3, addr, port);
    if (keep != nullptr) *keep = std::move(fd);
    return rep;
  }

  bool LogHas(const std::string& needle) const {
    for (const std::string& l : proxy_->Log()) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  EchoServer echo_;
  std::string dir_, path_;
  std::unique_ptr<EgressProxy> proxy_;
};

TEST_F(EgressProxyTest, SocketIsWorldConnectable) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
}

TEST_F(EgressProxyTest, AllowedHostViaOverrideReachesEcho) {
  ScopedFd fd;
  ASSERT_EQ(ConnectName("target.toani.test", echo_.port(), &fd), 0);
  ASSERT_TRUE(SendAll(fd.get(), {'p', 'i', 'n', 'g'}));
  EXPECT_EQ(RecvN(fd.get(), 4), (std::vector<uint8_t>{'p', 'i', 'n', 'g'}));
  EXPECT_TRUE(LogHas("allow host=target.toani.test port=" + std::to_string(echo_.port()) +
                     " address=127.0.0.1 (resolver override)"));
}

TEST_F(EgressProxyTest, NamesAreCaseInsensitiveAndWildcardsNeedALabel) {
  EXPECT_EQ(ConnectName("TARGET.Toani.Test", echo_.port()), 0);
  EXPECT_EQ(ConnectName("target.toani.test.", echo_.port()), 0);
  EXPECT_EQ(ConnectName("api.wild.test", echo_.port()), 0);
  EXPECT_EQ(ConnectName("wild.test", echo_.port()), 2);
  EXPECT_EQ(ConnectName("evilwild.test", echo_.port()), 2);
}

TEST_F(EgressProxyTest, DisallowedHostRefused) {
  EXPECT_EQ(ConnectName("evil.example", echo_.port()), 2);
  EXPECT_EQ(ConnectName("target.toani.test.evil.example", echo_.port()), 2);
  EXPECT_TRUE(LogHas("deny host=evil.example"));
  EXPECT_TRUE(LogHas("reason=not in allow-list"));
}

TEST_F(EgressProxyTest, WrongPortRefused) {
  EXPECT_EQ(ConnectName("target.toani.test", static_cast<uint16_t>(echo_.port() + 1)), 2);
  EXPECT_EQ(ConnectName("target.toani.test", 443), 2);
}

TEST_F(EgressProxyTest, IpLiteralsRefused) {
  const uint16_t p = echo_.port();
  {
    ScopedFd fd = Connect();
    EXPECT_EQ(SocksConnect(fd.get(), 1, {127, 0, 0, 1}, p), 8);
  }
  {
    ScopedFd fd = Connect();
    std::vector<uint8_t> v6(16, 0);
    v6[15] = 1;
    EXPECT_EQ(SocksConnect(fd.get(), 4, v6, p), 8);
  }
  for (const char* name : {"127.0.0.1", "2130706433", "0x7f.1", "127.1"}) {
    EXPECT_EQ(ConnectName(name, p), 8) << name;
  }
  EXPECT_TRUE(LogHas("IP literal"));
}

TEST_F(EgressProxyTest, NameResolvingToLoopbackRefusedWithoutOverride) {
  EXPECT_EQ(ConnectName("localhost", echo_.port()), 2);
  EXPECT_TRUE(LogHas("reason=resolves to non-global address"));
}

TEST_F(EgressProxyTest, UnresolvableNameIsHostUnreachable) {
  EXPECT_EQ(ConnectName("nowhere.invalid", echo_.port()), 4);
}

TEST_F(EgressProxyTest, OnlyConnectWithNoAuth) {
  {
    ScopedFd fd = Connect();
    const std::string h = "target.toani.test";
    std::vector<uint8_t> addr = {static_cast<uint8_t>(h.size())};
    addr.insert(addr.end(), h.begin(), h.end());
    EXPECT_EQ(SocksConnect(fd.get(), 3, addr, echo_.port(), /*cmd=BIND*/ 2), 7);
  }
  {
    ScopedFd fd = Connect();
    ASSERT_TRUE(SendAll(fd.get(), {5, 1, 2}));  // username/password only
    EXPECT_EQ(RecvN(fd.get(), 2), (std::vector<uint8_t>{5, 0xFF}));
  }
  {
    ScopedFd fd = Connect();
    ASSERT_TRUE(SendAll(fd.get(), {4, 1, 0, 80, 127, 0, 0, 1, 0}));  // SOCKS4
    EXPECT_TRUE(RecvN(fd.get(), 1).empty());
  }
}

TEST_F(EgressProxyTest, StopRemovesSocketAndEndsRelays) {
  ScopedFd fd;
  ASSERT_EQ(ConnectName("target.toani.test", echo_.port(), &fd), 0);
  proxy_->Stop();
  struct stat st {};
  EXPECT_NE(::stat(path_.c_str(), &st), 0);
  char c;
  EXPECT_EQ(::recv(fd.get(), &c, 1, 0), 0);  // relay closed
}

TEST(EgressProxyStartTest, RejectsBadConfiguration) {
  EXPECT_FALSE(EgressProxy::Start("/tmp/x.sock", {{"", 443}}, {}).ok());
  EXPECT_FALSE(EgressProxy::Start("/tmp/x.sock", {{"a.test", 0}}, {}).ok());
  EXPECT_FALSE(EgressProxy::Start("/tmp/x.sock", {{"bad host", 443}}, {}).ok());
  EXPECT_FALSE(EgressProxy::Start("/tmp/x.sock", {}, {{"a.test", "not-an-ip"}}).ok());
  EXPECT_FALSE(EgressProxy::Start(std::string(200, 'a'), {}, {}).ok());
}

TEST(MatchesHostPatternTest, Table) {
  EXPECT_TRUE(MatchesHostPattern("api.example.com", "api.example.com"));
  EXPECT_TRUE(MatchesHostPattern("API.example.com", "api.EXAMPLE.com"));
  EXPECT_FALSE(MatchesHostPattern("api.example.com", "xapi.example.com"));
  EXPECT_TRUE(MatchesHostPattern("*.example.com", "a.example.com"));
  EXPECT_TRUE(MatchesHostPattern("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(MatchesHostPattern("*.example.com", "example.com"));
  EXPECT_FALSE(MatchesHostPattern("*.example.com", "badexample.com"));
  EXPECT_FALSE(MatchesHostPattern("*.example.com", "example.com.evil"));
}

}  // namespace
}  // namespace toani
