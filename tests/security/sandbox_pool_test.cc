// Pre-started sandboxes (docs/connector-protocol.md §6.5) must keep every guarantee of a
// sandbox started in line: while waiting a sandbox has no way out; once taken, its egress
// proxy reaches only the hosts of the one execution that took it (never a host allowed
// only to a previous or another action); and no sandbox, key, process or /tmp is ever
// used by a second execution. The sandboxes are real (bwrap, seccomp, cgroups) and the
// program in them is tests/security/pool_probe.cc, a hostile stand-in for the connector.
#include "server/sandbox_pool.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace toani::server {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Accepts TCP connections on 127.0.0.1 and holds them until the next accept.
class TcpTarget {
 public:
  TcpTarget() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      std::vector<int> held;
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          held.push_back(c);
          ++accepted_;
        }
      }
      for (int c : held) ::close(c);
    });
  }
  ~TcpTarget() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

class SandboxPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/toani-pool-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    run_dir_ = tmpl;
    ::chmod(run_dir_.c_str(), 0711);
    runner_ = MakeBwrapRunner();
    cfg_.connector_path = TOANI_POOL_PROBE_PATH;
    cfg_.work_dir = run_dir_;
    cfg_.resolver_overrides = {{"*.toani.test", "127.0.0.1"}};
    cfg_.wall_timeout = 60s;
    cfg_.hello_timeout = 60s;  // a loaded CI machine
    cfg_.runner = runner_.get();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(run_dir_, ec);
  }
  SandboxPool::Factory Factory() {
    return [cfg = cfg_] { return PrepareSandbox(cfg, /*browser=*/false); };
  }
  // Hands `ps` its job (as the executor does: bind the proxy, restart the deadline,
  // write the job) and returns the probe's result line.
  json Run(PreparedSandbox& ps, const std::vector<EgressRule>& allow,
           const std::vector<std::string>& hosts, bool linger = false) {
    EXPECT_TRUE(ps.proxy->Bind(allow).ok());
    ps.process->RestartDeadline(60s);
    json job = {{"connect", json::array()}, {"linger", linger}};
    for (const std::string& h : hosts) job["connect"].push_back({{"host", h}, {"port", port()}});
    EXPECT_TRUE(ps.process->WriteLine(job.dump()).ok());
    auto line = ps.process->ReadLine(60s);
    EXPECT_TRUE(line.ok()) << line.status().message() << " stderr: " << ps.process->Stderr();
    if (!line.ok()) return json();
    return json::parse(*line, nullptr, false);
  }
  uint16_t port() const { return target_.port(); }
  static int Reply(const json& result, const std::string& host) {
    for (const json& r : result["results"]) {
      if (r.value("host", "") == host) return r.value("reply", -1);
    }
    return -2;
  }

  TcpTarget target_;
  std::string run_dir_;
  std::unique_ptr<SandboxRunner> runner_;
  SandboxPrepConfig cfg_;
};

TEST_F(SandboxPoolTest, WaitingSandboxHasNoEgressAndTakenOneReachesOnlyItsActionsHosts) {
  SandboxPool pool(2, Factory());
  ASSERT_TRUE(pool.WaitReady(2, 120s)) << pool.Stats().last_error;

  // Execution 1: action A may reach a.toani.test only.
  auto first = pool.Take();
  ASSERT_NE(first, nullptr);
  json r1 = Run(*first, {{"a.toani.test", port()}}, {"a.toani.test", "b.toani.test"});
  // Before its job the sandbox could not connect anywhere: the proxy was not listening.
  EXPECT_EQ(r1["seen"]["pre_bind_connect"], std::strerror(ECONNREFUSED)) << r1.dump();
  EXPECT_EQ(Reply(r1, "a.toani.test"), 0) << r1.dump();
  EXPECT_EQ(Reply(r1, "b.toani.test"), 2) << r1.dump();  // not in A's allow-list
  // A proxy is bound once; it never takes another execution's allow-list.
  Status rebind = first->proxy->Bind({{"b.toani.test", port()}});
  EXPECT_EQ(rebind.code(), StatusCode::kFailedPrecondition) << rebind.message();

  // Execution 2, from the same pool right after: action B may reach b.toani.test only.
  // a.toani.test, allowed to the previous action, must stay unreachable.
  auto second = pool.Take();
  ASSERT_NE(second, nullptr);
  json r2 = Run(*second, {{"b.toani.test", port()}}, {"a.toani.test", "b.toani.test"});
  EXPECT_EQ(r2["seen"]["pre_bind_connect"], std::strerror(ECONNREFUSED)) << r2.dump();
  EXPECT_EQ(Reply(r2, "a.toani.test"), 2) << r2.dump();
  EXPECT_EQ(Reply(r2, "b.toani.test"), 0) << r2.dump();

  // Both concurrently alive (another action's sandbox is not shared either): the first
  // one still cannot reach b.toani.test although the second may.
  for (const std::string& line : first->proxy->Log()) {
    if (line.find("b.toani.test") != std::string::npos) {
      EXPECT_EQ(line.rfind("deny", 0), 0u) << line;
    }
  }
  // And a sandbox whose execution binds an empty allow-list reaches nothing.
  ASSERT_TRUE(pool.WaitReady(1, 120s)) << pool.Stats().last_error;
  auto third = pool.Take();
  ASSERT_NE(third, nullptr);
  json r3 = Run(*third, {}, {"a.toani.test", "b.toani.test"});
  EXPECT_EQ(Reply(r3, "a.toani.test"), 2) << r3.dump();
  EXPECT_EQ(Reply(r3, "b.toani.test"), 2) << r3.dump();
}

TEST_F(SandboxPoolTest, NoSandboxKeyProcessOrTmpIsEverUsedTwice) {
  SandboxPool pool(2, Factory());
  std::set<std::string> keys, dirs;
  std::set<pid_t> pids;
  constexpr int kExecutions = 5;
  for (int i = 0; i < kExecutions; ++i) {
    ASSERT_TRUE(pool.WaitReady(1, 120s)) << pool.Stats().last_error;
    auto ps = pool.Take();
    ASSERT_NE(ps, nullptr);
    EXPECT_TRUE(keys.insert(ps->public_key).second) << "key handed out twice";
    EXPECT_TRUE(pids.insert(ps->process->pid()).second) << "bwrap pid seen twice";
    EXPECT_TRUE(dirs.insert(ps->dir->path()).second) << "directory used twice";
    const std::vector<pid_t> inside = ps->process->HostPids();
    EXPECT_FALSE(inside.empty());
    const std::string dir = ps->dir->path();
    json r = Run(*ps, {{"a.toani.test", port()}}, {"a.toani.test"});
    // Each sandbox starts with an empty /tmp: the marker of an earlier one is not there.
    EXPECT_EQ(r["seen"]["marker_existed"], false) << "execution " << i << ": " << r.dump();
    EXPECT_EQ(r["seen"]["marker_written"], true) << r.dump();
    EXPECT_EQ(Reply(r, "a.toani.test"), 0) << r.dump();
    ps.reset();  // the execution ends: the sandbox dies with everything it started
    pool.Release();
    // Killed at once; the kernel may take a moment to reap what was reparented.
    for (pid_t p : inside) {
      const auto until = std::chrono::steady_clock::now() + 30s;
      while (::kill(p, 0) == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(10ms);
      }
      EXPECT_NE(::kill(p, 0), 0) << "pid " << p << " outlived its execution";
    }
    EXPECT_FALSE(fs::exists(dir)) << dir;
  }
  const SandboxPoolStats s = pool.Stats();
  EXPECT_EQ(s.taken, static_cast<uint64_t>(kExecutions));
  EXPECT_GE(s.started, static_cast<uint64_t>(kExecutions));
}

// /proc/<pid>/status of a process: state, and whether SIGKILL is pending for it.
bool DeadOrKillPending(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return true;  // gone
  bool dying = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("State:", 0) == 0) {
      if (line.find('Z') != std::string::npos || line.find('X') != std::string::npos) dying = true;
    } else if (line.rfind("SigPnd:", 0) == 0 || line.rfind("ShdPnd:", 0) == 0) {
      const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
      if (mask & (1ull << (SIGKILL - 1))) dying = true;
    }
  }
  return dying;
}

bool Alive(pid_t pid) { return !DeadOrKillPending(pid); }

// The execution kills its sandbox (SignalKill) the moment the result is in, before it
// answers, even a connector that will not exit; reaping, the cgroup, the proxy and the
// directory are then handled by the SandboxReaper after the answer, and nothing is left.
TEST_F(SandboxPoolTest, SandboxIsKilledWhenTheResultIsInAndTornDownAfterwards) {
  SandboxPool pool(1, Factory());
  SandboxReaper reaper;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.WaitReady(1, 120s)) << pool.Stats().last_error;
    auto ps = pool.Take();
    ASSERT_NE(ps, nullptr);
    const std::vector<pid_t> inside = ps->process->HostPids();
    ASSERT_FALSE(inside.empty());
    const std::string dir = ps->dir->path();
    const std::string sock = dir + "/egress.sock";
    json r = Run(*ps, {{"a.toani.test", port()}}, {"a.toani.test"}, /*linger=*/true);
    EXPECT_EQ(Reply(r, "a.toani.test"), 0) << r.dump();
    // The probe stays after its result (this is what the kill has to deal with).
    std::this_thread::sleep_for(200ms);
    size_t alive = 0;
    for (pid_t p : inside) alive += Alive(p) ? 1 : 0;
    EXPECT_GT(alive, 0u) << "the lingering probe already exited: nothing to test";
    ps->process->SignalKill();
    // At once, without any waiting or reaping: nothing in the sandbox runs on.
    for (pid_t p : inside) EXPECT_TRUE(DeadOrKillPending(p)) << "pid " << p << " still running";
    reaper.Dispose(std::move(ps));
    pool.Release();
    ASSERT_TRUE(reaper.WaitIdle(60s));
    for (pid_t p : inside) {
      const auto until = std::chrono::steady_clock::now() + 30s;
      while (::kill(p, 0) == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(10ms);
      }
      EXPECT_NE(::kill(p, 0), 0) << "pid " << p << " outlived its execution";
    }
    EXPECT_FALSE(fs::exists(sock)) << sock;
    EXPECT_FALSE(fs::exists(dir)) << dir;
  }
}

// The refill runs at nice 19 where the server can give a taken sandbox its priority
// back, and starts a taken sandbox's replacement only once that execution answered.
TEST_F(SandboxPoolTest, RefillWaitsForTheAnswerAndRunsAtLowPriority) {
  errno = 0;
  const int normal = ::getpriority(PRIO_PROCESS, 0);
  // No fallback refill within the test's time (a loaded CI machine is slow).
  SandboxPool pool(1, Factory(), /*max_idle=*/10min, /*refill_after=*/10min);
  ASSERT_TRUE(pool.WaitReady(1, 120s)) << pool.Stats().last_error;
  auto ps = pool.Take();
  ASSERT_NE(ps, nullptr);
  json r = Run(*ps, {}, {});
  if (pool.Stats().low_priority) {
    EXPECT_EQ(r["seen"]["nice_waiting"], 19) << r.dump();
  } else {
    EXPECT_EQ(r["seen"]["nice_waiting"], normal) << r.dump();
  }
  EXPECT_EQ(r["seen"]["nice_running"], normal) << "a taken sandbox runs at the normal priority";
  // No replacement while the execution has not answered.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(pool.Stats().started, 1u);
  EXPECT_EQ(pool.Stats().ready, 0u);
  ps.reset();
  pool.Release();
  ASSERT_TRUE(pool.WaitReady(1, 120s)) << pool.Stats().last_error;
  EXPECT_EQ(pool.Stats().started, 2u);
}

TEST_F(SandboxPoolTest, StaleOrDeadSandboxesAreReplacedNotHandedOut) {
  SandboxPool pool(1, Factory(), /*max_idle=*/300ms);
  ASSERT_TRUE(pool.WaitReady(1, 120s)) << pool.Stats().last_error;
  // Let it go stale at least once; the refill thread kills it and starts a new one.
  const auto until = std::chrono::steady_clock::now() + 120s;
  while (pool.Stats().discarded == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(pool.Stats().discarded, 1u);
  // Whatever Take() returns is alive and no older than max_idle (it may find the one
  // ready sandbox just gone stale and return none: then wait for the next).
  std::unique_ptr<PreparedSandbox> ps;
  for (int i = 0; i < 50 && ps == nullptr; ++i) {
    ASSERT_TRUE(pool.WaitReady(1, 120s));
    ps = pool.Take();
  }
  ASSERT_NE(ps, nullptr);
  EXPECT_TRUE(ps->process->Running());
  EXPECT_LE(std::chrono::steady_clock::now() - ps->ready_at, 300ms + 50ms);
}

TEST_F(SandboxPoolTest, SizeZeroIsOff) {
  std::atomic<int> calls{0};
  {
    SandboxPool pool(0, [&]() -> StatusOr<std::unique_ptr<PreparedSandbox>> {
      ++calls;
      return Status::Internal("must not be called");
    });
    EXPECT_EQ(pool.Take(), nullptr);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(pool.Stats().started, 0u);
    EXPECT_EQ(pool.Stats().misses, 1u);
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(SandboxPoolTest, FailingPreparationIsReportedAndRetried) {
  std::atomic<int> calls{0};
  SandboxPool pool(1, [&]() -> StatusOr<std::unique_ptr<PreparedSandbox>> {
    ++calls;
    return Status::Unavailable("no sandbox today");
  });
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (calls.load() < 2 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(calls.load(), 2);  // retried, with back-off
  EXPECT_EQ(pool.Stats().last_error, "no sandbox today");
  EXPECT_EQ(pool.Take(), nullptr);  // the execution then starts its own
}

}  // namespace
}  // namespace toani::server
