// The SSRF suite: attempts to reach what the egress proxy must never reach — private
// and special IPv4 ranges, IPv6 forms that embed or map IPv4, IP literals in every
// spelling, DNS rebinding (through the proxy's resolver seam, answering differently on
// each lookup), disallowed ports, a TLS SNI that differs from the CONNECT host, hosts
// outside the allow-list — each asserted blocked; and allowed hosts asserted reachable.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/egress_proxy.h"
#include "sandbox/tls_sni.h"

namespace toani {
namespace {

using Bytes = std::vector<uint8_t>;

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

Bytes RecvN(int fd, size_t n, int timeout_ms = 2000) {
  Bytes out;
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    uint8_t buf[4096];
    const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) break;
    out.insert(out.end(), buf, buf + r);
  }
  return out;
}

bool SendAll(int fd, const Bytes& b) {
  return ::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size());
}

// A minimal TLS 1.3-shaped ClientHello; `sni` empty: no server_name extension.
Bytes ClientHello(const std::string& sni) {
  Bytes ext;
  if (!sni.empty()) {
    const size_t n = sni.size();
    ext = {0,
           0,
           static_cast<uint8_t>((n + 5) >> 8),
           static_cast<uint8_t>(n + 5),
           static_cast<uint8_t>((n + 3) >> 8),
           static_cast<uint8_t>(n + 3),
           0,
           static_cast<uint8_t>(n >> 8),
           static_cast<uint8_t>(n)};
    ext.insert(ext.end(), sni.begin(), sni.end());
  }
  Bytes body = {3, 3};
  body.insert(body.end(), 32, 0x42);                     // random
  body.insert(body.end(), {0, 0, 2, 0x13, 0x01, 1, 0});  // session id, suites, compression
  body.push_back(static_cast<uint8_t>(ext.size() >> 8));
  body.push_back(static_cast<uint8_t>(ext.size()));
  body.insert(body.end(), ext.begin(), ext.end());
  Bytes hs = {1, 0, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())};
  hs.insert(hs.end(), body.begin(), body.end());
  Bytes rec = {22, 3, 1, static_cast<uint8_t>(hs.size() >> 8), static_cast<uint8_t>(hs.size())};
  rec.insert(rec.end(), hs.begin(), hs.end());
  return rec;
}

// A loopback TCP listener that counts connections and echoes what it receives.
class Upstream {
 public:
  Upstream() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_.get(), 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        ScopedFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        ++accepted_;
        uint8_t buf[4096];
        ssize_t n;
        pollfd q{c.get(), POLLIN, 0};
        while (!stop_ && ::poll(&q, 1, 50) >= 0) {
          if (q.revents == 0) continue;
          if ((n = ::recv(c.get(), buf, sizeof buf, 0)) <= 0) break;
          received_ += static_cast<size_t>(n);
          ::send(c.get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL);
        }
      }
    });
  }
  ~Upstream() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  size_t received() const { return received_; }

 private:
  ScopedFd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<size_t> received_{0};
  std::thread thread_;
};

// The test's DNS: a fixed answer per name, except "rebind.ssrf.test", which answers a
// global address first and loopback on every later lookup.
class FakeDns {
 public:
  StatusOr<std::vector<std::string>> Resolve(const std::string& host) {
    std::lock_guard<std::mutex> l(mu_);
    ++lookups_[host];
    if (host == "rebind.ssrf.test") {
      if (lookups_[host] == 1) return std::vector<std::string>{"1.1.1.1"};
      return std::vector<std::string>{"127.0.0.1"};
    }
    auto it = answers_.find(host);
    if (it == answers_.end()) return Status::NotFound("NXDOMAIN");
    return it->second;
  }
  void Set(const std::string& host, std::vector<std::string> a) { answers_[host] = std::move(a); }
  int lookups(const std::string& host) {
    std::lock_guard<std::mutex> l(mu_);
    return lookups_[host];
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> answers_;
  std::map<std::string, int> lookups_;
};

// Every address form the proxy must refuse, each behind its own name.
const std::vector<std::pair<std::string, std::string>> kForbidden = {
    {"loopback", "127.0.0.1"},
    {"loopback-other", "127.53.0.9"},
    {"rfc1918-10", "10.0.0.1"},
    {"rfc1918-172", "172.16.5.4"},
    {"rfc1918-192", "192.168.1.1"},
    {"metadata", "169.254.169.254"},
    {"cgnat", "100.64.0.1"},
    {"this-network", "0.0.0.0"},
    {"multicast4", "224.0.0.1"},
    {"broadcast", "255.255.255.255"},
    {"reserved240", "240.0.0.1"},
    {"benchmarking", "198.18.0.1"},
    {"test-net", "192.0.2.10"},
    {"ietf-192-0-0", "192.0.0.8"},
    {"v6-loopback", "::1"},
    {"v6-unspecified", "::"},
    {"v4-mapped-loopback", "::ffff:127.0.0.1"},
    {"v4-mapped-metadata", "::ffff:169.254.169.254"},
    {"v4-compatible", "::127.0.0.1"},
    {"nat64", "64:ff9b::7f00:1"},
    {"nat64-local", "64:ff9b:1::a00:1"},
    {"sixtofour", "2002:7f00:1::1"},
    {"teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2"},
    {"ula", "fd00::1"},
    {"link-local6", "fe80::1"},
    {"multicast6", "ff02::1"},
    {"documentation6", "2001:db8::1"},
    {"mixed-answer", ""},  // one global and one loopback address
};

class SsrfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/toani-ssrf-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::vector<EgressRule> allow = {{"allowed.toani.test", upstream_.port()},
                                     {"*.ssrf.test", upstream_.port()},
                                     {"rebind.ssrf.test", upstream_.port()}};
    for (const auto& [name, addr] : kForbidden) {
      dns_.Set(name + ".ssrf.test", addr.empty() ? std::vector<std::string>{"1.1.1.1", "127.0.0.1"}
                                                 : std::vector<std::string>{addr});
    }
    EgressProxyOptions opts;
    opts.connect_timeout = std::chrono::milliseconds(300);
    opts.handshake_timeout = std::chrono::milliseconds(1500);
    opts.resolver = [this](const std::string& h) { return dns_.Resolve(h); };
    // The explicit, configured override is the one way to reach a local target.
    auto p = EgressProxy::Start(dir_ + "/egress.sock", allow, {{"allowed.toani.test", "127.0.0.1"}},
                                opts);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    proxy_ = std::move(*p);
  }
  void TearDown() override {
    proxy_.reset();
    ::rmdir(dir_.c_str());
  }

  // SOCKS5 CONNECT; returns REP or -1. `fd` keeps the connection.
  int Connect(uint8_t atyp, const Bytes& addr, uint16_t port, ScopedFd* fd) {
    *fd = ScopedFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, proxy_->socket_path().c_str(), sizeof a.sun_path - 1);
    if (::connect(fd->get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    if (!SendAll(fd->get(), {5, 1, 0}) || RecvN(fd->get(), 2) != Bytes{5, 0}) return -1;
    Bytes req = {5, 1, 0, atyp};
    req.insert(req.end(), addr.begin(), addr.end());
    req.insert(req.end(), {static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port)});
    if (!SendAll(fd->get(), req)) return -1;
    const Bytes reply = RecvN(fd->get(), 10);
    return reply.size() == 10 ? reply[1] : -1;
  }
  int ConnectName(const std::string& host, uint16_t port, ScopedFd* fd) {
    Bytes addr = {static_cast<uint8_t>(host.size())};
    addr.insert(addr.end(), host.begin(), host.end());
    return Connect(3, addr, port, fd);
  }
  int ConnectName(const std::string& host, uint16_t port) {
    ScopedFd fd;
    return ConnectName(host, port, &fd);
  }
  // After a successful CONNECT: sends `hello`; true if the same bytes come back
  // (i.e. they reached the upstream echo).
  static bool Echoes(int fd, const Bytes& hello) {
    return SendAll(fd, hello) && RecvN(fd, hello.size(), 1500) == hello;
  }

  Upstream upstream_;
  FakeDns dns_;
  std::string dir_;
  std::unique_ptr<EgressProxy> proxy_;
};

TEST_F(SsrfTest, AllowedHostIsReachableWithMatchingSni) {
  {
    ScopedFd fd;
    ASSERT_EQ(ConnectName("allowed.toani.test", upstream_.port(), &fd), 0);
    EXPECT_TRUE(Echoes(fd.get(), ClientHello("allowed.toani.test")));
    EXPECT_EQ(upstream_.accepted(), 1);
  }  // the upstream serves one connection at a time
  // Case and a trailing dot do not matter for the SNI comparison either.
  ScopedFd fd2;
  ASSERT_EQ(ConnectName("Allowed.Toani.Test", upstream_.port(), &fd2), 0);
  EXPECT_TRUE(Echoes(fd2.get(), ClientHello("ALLOWED.toani.test.")));
}

TEST_F(SsrfTest, EveryNonGlobalAddressIsRefused) {
  for (const auto& [name, addr] : kForbidden) {
    SCOPED_TRACE(name + " -> " + addr);
    EXPECT_EQ(ConnectName(name + ".ssrf.test", upstream_.port()), 2);
  }
  EXPECT_EQ(upstream_.accepted(), 0);
}

TEST_F(SsrfTest, IpLiteralsAreRefusedInEverySpelling) {
  ScopedFd fd;
  EXPECT_EQ(Connect(1, {127, 0, 0, 1}, upstream_.port(), &fd), 8);        // ATYP IPv4
  EXPECT_EQ(Connect(1, {169, 254, 169, 254}, upstream_.port(), &fd), 8);  // metadata
  Bytes v6(16, 0);
  v6[15] = 1;
  EXPECT_EQ(Connect(4, v6, upstream_.port(), &fd), 8);  // ATYP IPv6 ::1
  for (const char* name : {"127.0.0.1", "2130706433", "0x7f000001", "0x7f.1", "127.1",
                           "017700000001", "169.254.169.254"}) {
    EXPECT_EQ(ConnectName(name, upstream_.port()), 8) << name;
  }
  for (const char* name : {"[::1]", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_EQ(ConnectName(name, upstream_.port()), 2) << name;  // not a valid host name
  }
  EXPECT_EQ(upstream_.accepted(), 0);
}

TEST_F(SsrfTest, DnsRebindingCannotSwapTheCheckedAddress) {
  // First lookup: a global address (checked, then connected to — and unreachable from
  // here). The proxy never asks again, so the loopback answer of every later lookup is
  // never used for this connection.
  ScopedFd fd;
  const int first = ConnectName("rebind.ssrf.test", upstream_.port(), &fd);
  EXPECT_NE(first, 0);  // 1.1.1.1:<port> is not reachable in the test environment
  EXPECT_EQ(dns_.lookups("rebind.ssrf.test"), 1);
  // A second connection gets the loopback answer: refused by the check.
  EXPECT_EQ(ConnectName("rebind.ssrf.test", upstream_.port()), 2);
  EXPECT_EQ(dns_.lookups("rebind.ssrf.test"), 2);
  EXPECT_EQ(upstream_.accepted(), 0);
}

TEST_F(SsrfTest, DisallowedPortsAreRefused) {
  for (uint16_t port : {uint16_t{22}, uint16_t{80}, uint16_t{443}, uint16_t{6379},
                        static_cast<uint16_t>(upstream_.port() + 1)}) {
    EXPECT_EQ(ConnectName("allowed.toani.test", port), 2) << port;
  }
  EXPECT_EQ(upstream_.accepted(), 0);
}

TEST_F(SsrfTest, HostsOutsideTheAllowListAreRefused) {
  for (const char* host : {"evil.example", "allowed.toani.test.evil.example", "xallowed.toani.test",
                           "ssrf.test", "toani.test", "localhost"}) {
    EXPECT_EQ(ConnectName(host, upstream_.port()), 2) << host;
  }
  EXPECT_EQ(upstream_.accepted(), 0);
}

TEST_F(SsrfTest, SniMismatchIsClosedBeforeAnyByteIsForwarded) {
  for (const Bytes& first :
       {ClientHello("evil.example"), ClientHello("metadata.ssrf.test"), ClientHello(""),
        Bytes{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n'}}) {
    ScopedFd fd;
    ASSERT_EQ(ConnectName("allowed.toani.test", upstream_.port(), &fd), 0);
    EXPECT_FALSE(Echoes(fd.get(), first));
  }
  EXPECT_EQ(upstream_.received(), 0u);
  bool logged = false;
  for (const std::string& l : proxy_->Log()) {
    logged = logged || l.find("TLS SNI 'evil.example' does not match") != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

TEST(TlsSniTest, ParsesAndRejects) {
  std::string sni;
  const Bytes hello = ClientHello("Api.Example.COM.");
  EXPECT_EQ(ExtractTlsSni(hello.data(), hello.size(), &sni), SniResult::kFound);
  EXPECT_EQ(sni, "api.example.com");
  EXPECT_EQ(ExtractTlsSni(hello.data(), 20, &sni), SniResult::kNeedMore);
  const Bytes none = ClientHello("");
  EXPECT_EQ(ExtractTlsSni(none.data(), none.size(), &sni), SniResult::kNoSni);
  const Bytes http = {'G', 'E', 'T', ' ', '/'};
  EXPECT_EQ(ExtractTlsSni(http.data(), http.size(), &sni), SniResult::kNotTls);
  Bytes truncated_ext = hello;
  truncated_ext[truncated_ext.size() - 20] = 0xFF;  // corrupt a length inside the SNI
  EXPECT_NE(ExtractTlsSni(truncated_ext.data(), truncated_ext.size(), &sni), SniResult::kFound);
}

}  // namespace
}  // namespace toani
