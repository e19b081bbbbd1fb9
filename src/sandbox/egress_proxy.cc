#include "sandbox/egress_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "sandbox/ip_address.h"
#include "sandbox/tls_sni.h"

namespace toani {
namespace {

using Clock = std::chrono::steady_clock;

// SOCKS5 reply codes (RFC 1928 §6).
constexpr uint8_t kGeneralFailure = 0x01;
constexpr uint8_t kNotAllowed = 0x02;
constexpr uint8_t kHostUnreachable = 0x04;
constexpr uint8_t kConnectionRefused = 0x05;
constexpr uint8_t kCommandNotSupported = 0x07;
constexpr uint8_t kAddressTypeNotSupported = 0x08;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Lower-cases and checks a host name: 1..253 bytes of [a-z0-9-_.], no empty label, one
// trailing dot removed. Returns "" if invalid.
std::string NormalizeHost(std::string_view raw) {
  std::string h = Lower(raw);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.find("..") != h.npos) return "";
  for (char c : h) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return "";
  }
  return h;
}

// An IPv4 or IPv6 literal as a socket address (port 0); false if it is neither.
bool ParseIp(const std::string& text, sockaddr_storage* ss) {
  *ss = {};
  auto* in = reinterpret_cast<sockaddr_in*>(ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, text.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    return true;
  }
  return false;
}

StatusOr<std::vector<std::string>> GetAddrInfoResolver(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int gai = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (gai != 0) return Status::NotFound(std::string("resolution failed: ") + gai_strerror(gai));
  std::vector<std::string> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) {
      out.push_back(AddressToString(ai->ai_addr));
    }
  }
  ::freeaddrinfo(res);
  return out;
}

bool ValidPattern(const std::string& p) {
  const std::string_view body = p.starts_with("*.") ? std::string_view(p).substr(2) : p;
  return !NormalizeHost(body).empty() && NormalizeHost(body) == Lower(body);
}

}  // namespace

bool MatchesHostPattern(std::string_view pattern, std::string_view host) {
  const std::string p = Lower(pattern);
  const std::string h = Lower(host);
  if (p.starts_with("*.")) {
    const std::string_view suffix = std::string_view(p).substr(1);  // ".suffix"
    return h.size() > suffix.size() && h.ends_with(suffix);
  }
  return p == h;
}

struct EgressProxy::Impl {
  std::string path;
  std::vector<EgressRule> allow;
  std::vector<std::pair<std::string, sockaddr_storage>> overrides;
  EgressProxyOptions options;
  Fd listen_fd;
  Fd stop_r, stop_w;     // stop_r turns readable (forever) when Stop() is called
  std::thread acceptor;  // started by Bind()
  bool stopped = false;
  bool bound = false;

  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::mutex mu;  // guards workers, log
  std::list<Worker> workers;
  std::deque<std::string> log;

  void Log(std::string line) {
    std::lock_guard<std::mutex> lock(mu);
    log.push_back(std::move(line));
    while (log.size() > options.max_log_entries) log.pop_front();
  }

  // Polls `fd` for `events` plus the stop pipe. False on stop, timeout or error.
  bool WaitFor(int fd, short events, Clock::time_point deadline) const {
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p[2] = {{fd, events, 0}, {stop_r.get(), POLLIN, 0}};
      const int r = ::poll(p, 2, static_cast<int>(std::min<int64_t>(left, 60000)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;  // re-check the deadline
      if (p[1].revents != 0) return false;
      return true;
    }
  }

  bool ReadExact(int fd, uint8_t* buf, size_t n, Clock::time_point deadline) const {
    while (n > 0) {
      const ssize_t r = ::recv(fd, buf, n, 0);
      if (r > 0) {
        buf += r;
        n -= static_cast<size_t>(r);
        continue;
      }
      if (r == 0) return false;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (!WaitFor(fd, POLLIN, deadline)) return false;
    }
    return true;
  }

  bool WriteAll(int fd, const uint8_t* buf, size_t n, Clock::time_point deadline) const {
    while (n > 0) {
      const ssize_t r = ::send(fd, buf, n, MSG_NOSIGNAL);
      if (r > 0) {
        buf += r;
        n -= static_cast<size_t>(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
      if (!WaitFor(fd, POLLOUT, deadline)) return false;
    }
    return true;
  }

  void Reply(int fd, uint8_t code, Clock::time_point deadline) const {
    // BND.ADDR/PORT are zeros: the sandbox learns nothing about the upstream address.
    const uint8_t msg[10] = {5, code, 0, 1, 0, 0, 0, 0, 0, 0};
    (void)WriteAll(fd, msg, sizeof msg, deadline);
  }

  void Handle(Fd client);
  void Relay(int a, int b, const std::string& what);
  void AcceptLoop();
};

namespace {

// Connects to `addr` without blocking past `deadline` or Stop(). Returns the fd or -1
// with errno set.
int ConnectTo(const EgressProxy::Impl& impl, const sockaddr_storage& addr,
              Clock::time_point deadline) {
  const socklen_t len = addr.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  // A relay forwards each piece as it comes (TLS records, small requests): no Nagle delay.
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0) return fd;
  if (errno == EINPROGRESS && impl.WaitFor(fd, POLLOUT, deadline)) {
    int err = 0;
    socklen_t el = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) return fd;
    errno = err != 0 ? err : ETIMEDOUT;
  } else if (errno == EINPROGRESS) {
    errno = ETIMEDOUT;
  }
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return -1;
}

}  // namespace

void EgressProxy::Impl::Handle(Fd client) {
  const int fd = client.get();
  const Clock::time_point hs_deadline = Clock::now() + options.handshake_timeout;
  uint8_t head[2];
  if (!ReadExact(fd, head, 2, hs_deadline) || head[0] != 5) {
    Log("deny reason=not a SOCKS5 greeting");
    return;
  }
  uint8_t methods[255];
  if (!ReadExact(fd, methods, head[1], hs_deadline)) return;
  if (std::find(methods, methods + head[1], uint8_t{0}) == methods + head[1]) {
    const uint8_t no[2] = {5, 0xFF};
    Log("deny reason=client does not offer no-auth");
    (void)WriteAll(fd, no, 2, hs_deadline);
    return;
  }
  const uint8_t yes[2] = {5, 0};
  if (!WriteAll(fd, yes, 2, hs_deadline)) return;

  uint8_t req[4];
  if (!ReadExact(fd, req, 4, hs_deadline) || req[0] != 5) return;
  if (req[1] != 1) {
    Log("deny reason=command " + std::to_string(req[1]) + " not supported (CONNECT only)");
    Reply(fd, kCommandNotSupported, hs_deadline);
    return;
  }
  if (req[3] != 3) {
    Log("deny reason=address type " + std::to_string(req[3]) +
        " refused (IP literals not allowed; domain names only)");
    Reply(fd, kAddressTypeNotSupported, hs_deadline);
    return;
  }
  uint8_t len = 0;
  uint8_t name[256];
  uint8_t port_be[2];
  if (!ReadExact(fd, &len, 1, hs_deadline) || !ReadExact(fd, name, len, hs_deadline) ||
      !ReadExact(fd, port_be, 2, hs_deadline)) {
    return;
  }
  const uint16_t port = static_cast<uint16_t>((port_be[0] << 8) | port_be[1]);
  const std::string host = NormalizeHost(std::string_view(reinterpret_cast<char*>(name), len));
  const std::string where =
      "host=" + (host.empty() ? std::string("<invalid>") : host) + " port=" + std::to_string(port);
  if (host.empty()) {
    Log("deny " + where + " reason=invalid host name");
    Reply(fd, kNotAllowed, hs_deadline);
    return;
  }
  if (LooksLikeIpLiteral(host)) {
    Log("deny " + where + " reason=IP literal sent as a domain name");
    Reply(fd, kAddressTypeNotSupported, hs_deadline);
    return;
  }
  const bool allowed = std::any_of(allow.begin(), allow.end(), [&](const EgressRule& r) {
    return r.port == port && MatchesHostPattern(r.host, host);
  });
  if (!allowed) {
    Log("deny " + where + " reason=not in allow-list");
    Reply(fd, kNotAllowed, hs_deadline);
    return;
  }

  std::vector<sockaddr_storage> targets;
  bool overridden = false;
  for (const auto& [pattern, addr] : overrides) {
    if (MatchesHostPattern(pattern, host)) {
      targets.push_back(addr);
      overridden = true;
      break;
    }
  }
  if (!overridden) {
    // Resolved once; only the addresses of this answer are checked and connected to,
    // so a second, different answer (DNS rebinding) can never be used.
    auto answer = options.resolver ? options.resolver(host) : GetAddrInfoResolver(host);
    if (!answer.ok()) {
      Log("deny " + where + " reason=" + answer.status().message());
      Reply(fd, kHostUnreachable, hs_deadline);
      return;
    }
    std::string bad;
    for (const std::string& text : *answer) {
      sockaddr_storage ss{};
      if (!ParseIp(text, &ss) || !IsGlobalUnicast(reinterpret_cast<const sockaddr*>(&ss))) {
        bad = text;
        break;
      }
      targets.push_back(ss);
    }
    if (!bad.empty() || targets.empty()) {
      Log("deny " + where + " reason=resolves to non-global address " + bad);
      Reply(fd, kNotAllowed, hs_deadline);
      return;
    }
  }
  // Connect to exactly the addresses checked above, with the requested port.
  int upstream = -1;
  int last_errno = 0;
  std::string connected_to;
  for (sockaddr_storage& ss : targets) {
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
    }
    upstream = ConnectTo(*this, ss, Clock::now() + options.connect_timeout);
    if (upstream >= 0) {
      connected_to = AddressToString(reinterpret_cast<const sockaddr*>(&ss));
      break;
    }
    last_errno = errno;
  }
  if (upstream < 0) {
    Log("deny " + where + " reason=connect failed: " + std::strerror(last_errno));
    Reply(fd, last_errno == ECONNREFUSED ? kConnectionRefused : kHostUnreachable, hs_deadline);
    return;
  }
  Fd up(upstream);
  const uint8_t ok[10] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  Log("allow " + where + " address=" + connected_to + (overridden ? " (resolver override)" : ""));
  if (!WriteAll(fd, ok, sizeof ok, hs_deadline)) return;
  if (options.require_tls_sni) {
    // Nothing reaches upstream until the ClientHello names the host that was checked.
    std::vector<uint8_t> hello;
    std::string sni;
    SniResult res = SniResult::kNeedMore;
    while (res == SniResult::kNeedMore) {
      uint8_t buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        hello.insert(hello.end(), buf, buf + n);
        res = ExtractTlsSni(hello.data(), hello.size(), &sni);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(fd, POLLIN, hs_deadline)) {
        continue;
      }
      Log("deny " + where + " reason=no TLS ClientHello before the handshake timeout");
      return;
    }
    if (res != SniResult::kFound || sni != host) {
      Log("deny " + where + " reason=TLS SNI " +
          (res == SniResult::kFound   ? "'" + NormalizeHost(sni) + "' does not match the host"
           : res == SniResult::kNoSni ? std::string("missing")
                                      : std::string("absent: not a TLS ClientHello")));
      return;
    }
    if (!WriteAll(up.get(), hello.data(), hello.size(), hs_deadline)) return;
  }
  Relay(fd, up.get(), where);
}

void EgressProxy::Impl::Relay(int a, int b, const std::string& what) {
  uint64_t a_to_b = 0, b_to_a = 0;
  bool a_open = true, b_open = true;  // still reading from a / from b
  uint8_t buf[16384];
  while (a_open || b_open) {
    pollfd p[3] = {
        {a_open ? a : -1, POLLIN, 0}, {b_open ? b : -1, POLLIN, 0}, {stop_r.get(), POLLIN, 0}};
    const int r = ::poll(p, 3, static_cast<int>(options.idle_timeout.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || p[2].revents != 0) break;  // idle timeout, error or Stop()
    bool failed = false;
    for (int side = 0; side < 2 && !failed; ++side) {
      if (p[side].revents == 0) continue;
      const int from = side == 0 ? a : b;
      const int to = side == 0 ? b : a;
      const ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        (side == 0 ? a_open : b_open) = false;
        ::shutdown(to, SHUT_WR);
        continue;
      }
      if (!WriteAll(to, buf, static_cast<size_t>(n), Clock::now() + options.idle_timeout)) {
        failed = true;
      }
      (side == 0 ? a_to_b : b_to_a) += static_cast<uint64_t>(n);
    }
    if (failed) break;
  }
  Log("close " + what + " sent=" + std::to_string(a_to_b) + " received=" + std::to_string(b_to_a));
}

void EgressProxy::Impl::AcceptLoop() {
  while (true) {
    pollfd p[2] = {{listen_fd.get(), POLLIN, 0}, {stop_r.get(), POLLIN, 0}};
    const int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || p[1].revents != 0) return;
    const int c = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) continue;
    Fd client(c);
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = workers.begin(); it != workers.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
    if (workers.size() >= options.max_connections) {
      log.push_back("deny reason=too many concurrent connections");
      continue;  // `client` closes
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers.push_back({std::thread([this, done, cl = std::move(client)]() mutable {
                         Handle(std::move(cl));
                         done->store(true);
                       }),
                       done});
  }
}

EgressProxy::EgressProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<EgressProxy>> EgressProxy::Start(std::string unix_socket_path,
                                                          std::vector<EgressRule> allow,
                                                          std::vector<ResolverOverride> overrides,
                                                          EgressProxyOptions options) {
  TOANI_ASSIGN_OR_RETURN(auto proxy,
                         StartUnbound(std::move(unix_socket_path), std::move(overrides), options));
  TOANI_RETURN_IF_ERROR(proxy->Bind(std::move(allow)));
  return proxy;
}

StatusOr<std::unique_ptr<EgressProxy>> EgressProxy::StartUnbound(
    std::string unix_socket_path, std::vector<ResolverOverride> overrides,
    EgressProxyOptions options) {
  auto impl = std::make_unique<Impl>();
  for (const ResolverOverride& o : overrides) {
    if (!ValidPattern(o.host_pattern)) {
      return Status::InvalidArgument("bad resolver override pattern '" + o.host_pattern + "'");
    }
    sockaddr_storage ss{};
    if (!ParseIp(o.address, &ss)) {
      return Status::InvalidArgument("resolver override address '" + o.address +
                                     "' is not an IP literal");
    }
    impl->overrides.emplace_back(o.host_pattern, ss);
  }
  if (options.max_connections == 0) return Status::InvalidArgument("max_connections must be > 0");
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (unix_socket_path.empty() || unix_socket_path.size() >= sizeof sun.sun_path) {
    return Status::InvalidArgument("unix socket path empty or too long");
  }
  std::memcpy(sun.sun_path, unix_socket_path.data(), unix_socket_path.size());

  impl->listen_fd = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (impl->listen_fd.get() < 0) return Status::Internal(std::string("socket: ") + strerror(errno));
  if (::bind(impl->listen_fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    return Status::Internal("bind " + unix_socket_path + ": " + strerror(errno));
  }
  // Any uid may connect: the socket is only reachable from the one sandbox it is bound
  // into (and from the host, where the allow-list applies just the same). Until Bind()
  // it does not listen, so a connect() is refused (ECONNREFUSED).
  if (::chmod(unix_socket_path.c_str(), 0666) != 0) {
    const std::string err = strerror(errno);
    ::unlink(unix_socket_path.c_str());
    return Status::Internal("chmod " + unix_socket_path + ": " + err);
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::unlink(unix_socket_path.c_str());
    return Status::Internal(std::string("pipe2: ") + strerror(errno));
  }
  impl->stop_r = Fd(pipe_fds[0]);
  impl->stop_w = Fd(pipe_fds[1]);
  impl->path = std::move(unix_socket_path);
  impl->options = options;
  return std::unique_ptr<EgressProxy>(new EgressProxy(std::move(impl)));
}

Status EgressProxy::Bind(std::vector<EgressRule> allow) {
  if (impl_->stopped) return Status::FailedPrecondition("egress proxy is stopped");
  if (impl_->bound) {
    return Status::FailedPrecondition("egress proxy is already bound to an execution's allow-list");
  }
  // Once only, even when this call fails: `allow` is fixed before the first connection
  // can be accepted and never changes afterwards.
  impl_->bound = true;
  for (const EgressRule& r : allow) {
    if (!ValidPattern(r.host) || r.port == 0) {
      return Status::InvalidArgument("bad egress rule '" + r.host + ":" + std::to_string(r.port) +
                                     "'");
    }
  }
  impl_->allow = std::move(allow);
  for (EgressRule& r : impl_->allow) r.host = Lower(r.host);
  if (::listen(impl_->listen_fd.get(), 64) != 0) {
    return Status::Internal("listen " + impl_->path + ": " + strerror(errno));
  }
  Impl* raw = impl_.get();
  impl_->acceptor = std::thread([raw] { raw->AcceptLoop(); });
  return Status::Ok();
}

bool EgressProxy::bound() const { return impl_->bound; }

void EgressProxy::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  const char b = 1;
  while (::write(impl_->stop_w.get(), &b, 1) < 0 && errno == EINTR) {
  }
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  std::list<Impl::Worker> workers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    workers.swap(impl_->workers);
  }
  for (Impl::Worker& w : workers) w.thread.join();
  ::unlink(impl_->path.c_str());
}

EgressProxy::~EgressProxy() { Stop(); }

std::vector<std::string> EgressProxy::Log() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return {impl_->log.begin(), impl_->log.end()};
}

const std::string& EgressProxy::socket_path() const { return impl_->path; }

}  // namespace toani
