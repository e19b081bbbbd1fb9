// Sandbox and egress-proxy costs, each beside its baseline in the same run:
//  - BM_PlainForkExec vs BM_SandboxStartToExit: /usr/bin/true started and reaped by a
//    plain fork/exec, and the same program in a full sandbox (bwrap namespaces, seccomp,
//    cgroups, rlimits) from Start() to exit.
//  - BM_DirectConnection vs BM_ProxyConnection: a loopback TCP connection carrying one
//    TLS-ClientHello-sized round trip, directly and through the egress proxy (SOCKS5
//    over its Unix socket, allow-list, resolver override, SNI check, relay).
// Results: docs/performance.md.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/egress_proxy.h"
#include "sandbox/sandbox_runner.h"

namespace {

using Bytes = std::vector<uint8_t>;

void BM_PlainForkExec(benchmark::State& state) {
  for (auto _ : state) {
    const pid_t p = ::fork();
    if (p == 0) {
      char* const argv[] = {const_cast<char*>("/usr/bin/true"), nullptr};
      char* const envp[] = {nullptr};
      ::execve(argv[0], argv, envp);
      _exit(127);
    }
    int st = 0;
    ::waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) state.SkipWithError("true failed");
  }
}
BENCHMARK(BM_PlainForkExec)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SandboxStartToExit(benchmark::State& state) {
  auto runner = toani::MakeBwrapRunner();
  toani::SandboxSpec spec;
  spec.connector_path = "/usr/bin/true";
  for (auto _ : state) {
    auto proc = runner->Start(spec);
    if (!proc.ok()) {
      state.SkipWithError(proc.status().ToString().c_str());
      break;
    }
    auto code = (*proc)->Wait();
    if (!code.ok() || *code != 0) {
      state.SkipWithError(("sandboxed true failed: " + (*proc)->Stderr()).c_str());
      break;
    }
  }
}
BENCHMARK(BM_SandboxStartToExit)->Unit(benchmark::kMillisecond)->UseRealTime();

Bytes ClientHello(const std::string& sni) {
  const size_t n = sni.size();
  Bytes ext = {0,
               0,
               static_cast<uint8_t>((n + 5) >> 8),
               static_cast<uint8_t>(n + 5),
               static_cast<uint8_t>((n + 3) >> 8),
               static_cast<uint8_t>(n + 3),
               0,
               static_cast<uint8_t>(n >> 8),
               static_cast<uint8_t>(n)};
  ext.insert(ext.end(), sni.begin(), sni.end());
  Bytes body = {3, 3};
  body.insert(body.end(), 32, 0x42);
  body.insert(body.end(), {0, 0, 2, 0x13, 0x01, 1, 0});
  body.push_back(static_cast<uint8_t>(ext.size() >> 8));
  body.push_back(static_cast<uint8_t>(ext.size()));
  body.insert(body.end(), ext.begin(), ext.end());
  Bytes hs = {1, 0, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())};
  hs.insert(hs.end(), body.begin(), body.end());
  Bytes rec = {22, 3, 1, static_cast<uint8_t>(hs.size() >> 8), static_cast<uint8_t>(hs.size())};
  rec.insert(rec.end(), hs.begin(), hs.end());
  return rec;
}

bool RecvN(int fd, size_t n) {
  uint8_t buf[4096];
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - got), 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// Loopback echo server, one connection at a time (the benchmark is sequential).
class Echo {
 public:
  Echo() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 128);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        uint8_t buf[4096];
        ssize_t n;
        while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) {
          ::send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
        }
        ::close(c);
      }
    });
  }
  ~Echo() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void BM_DirectConnection(benchmark::State& state) {
  Echo echo;
  const Bytes hello = ClientHello("bench.toani.test");
  for (auto _ : state) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(echo.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(hello.size()) ||
        !RecvN(fd, hello.size())) {
      state.SkipWithError("direct connection failed");
    }
    ::close(fd);
  }
}
BENCHMARK(BM_DirectConnection)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_ProxyConnection(benchmark::State& state) {
  Echo echo;
  char tmpl[] = "/tmp/toani-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return state.SkipWithError("mkdtemp");
  const std::string sock = std::string(tmpl) + "/egress.sock";
  {
    auto proxy = toani::EgressProxy::Start(sock, {{"bench.toani.test", echo.port()}},
                                           {{"bench.toani.test", "127.0.0.1"}});
    if (!proxy.ok()) return state.SkipWithError(proxy.status().ToString().c_str());
    const Bytes hello = ClientHello("bench.toani.test");
    const std::string host = "bench.toani.test";
    Bytes req = {5, 1, 0, 5, 1, 0, 3, static_cast<uint8_t>(host.size())};
    req.insert(req.end(), host.begin(), host.end());
    req.insert(req.end(),
               {static_cast<uint8_t>(echo.port() >> 8), static_cast<uint8_t>(echo.port() & 0xFF)});
    for (auto _ : state) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
      // Greeting and CONNECT pipelined, as curl does; replies: 2 + 10 bytes.
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()) ||
          !RecvN(fd, 12) ||
          ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) !=
              static_cast<ssize_t>(hello.size()) ||
          !RecvN(fd, hello.size())) {
        state.SkipWithError("proxied connection failed");
      }
      ::close(fd);
    }
  }
  ::rmdir(tmpl);
}
BENCHMARK(BM_ProxyConnection)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
