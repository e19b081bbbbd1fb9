// The escape suite: runs a hostile program (sandbox_probe) in the bwrap sandbox and
// checks that every escape attempt failed — host files and the server's data directory,
// writes outside /tmp, other processes' environments, IP/raw/netlink sockets, loopback
// and abstract-socket networking, ptrace, mount, namespaces, io_uring, bpf, keyctl —
// and that resource abuse (fork bomb, 2 GB, endless spinning, a detached straggler) is
// contained and leaves the host unaffected.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "sandbox/cgroup.h"
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

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

TEST(SandboxEscapeTest, HostileProgramCannotEscape) {
  char tmpl[] = "/tmp/toani-escape-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  struct RemoveDir {
    std::string path;
    ~RemoveDir() { std::filesystem::remove_all(path); }
  } cleanup{dir};
  ::chmod(dir.c_str(), 0755);  // readable by anyone on the host: only the mount hides it
  const std::string marker = dir + "/host-secret.txt";
  std::ofstream(marker) << "host secret";
  ::chmod(marker.c_str(), 0644);
  // Like the server's data directory: 0700, holding the database.
  const std::string data_dir = dir + "/data";
  ::mkdir(data_dir.c_str(), 0700);
  const std::string data_file = data_dir + "/toani.db";
  std::ofstream(data_file) << "sqlite";
  // A secret in the host's environment must not be readable through /proc.
  ::setenv("TOANI_ESCAPE_TEST_SECRET", "host-environment-secret", 1);

  // A TCP listener on host loopback.
  ScopedFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  // A UDP socket on host loopback.
  ScopedFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in uaddr{};
  uaddr.sin_family = AF_INET;
  uaddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(udp.get(), reinterpret_cast<sockaddr*>(&uaddr), sizeof uaddr), 0);
  len = sizeof uaddr;
  ASSERT_EQ(::getsockname(udp.get(), reinterpret_cast<sockaddr*>(&uaddr), &len), 0);
  const int udp_port = ntohs(uaddr.sin_port);

  // An abstract Unix socket (per network namespace).
  const std::string abstract_name = "toani-escape-" + std::to_string(::getpid());
  ScopedFd abstract(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path + 1, abstract_name.data(), abstract_name.size());
  const auto un_len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + abstract_name.size());
  ASSERT_EQ(::bind(abstract.get(), reinterpret_cast<sockaddr*>(&un), un_len), 0);
  ASSERT_EQ(::listen(abstract.get(), 4), 0);

  SandboxSpec spec;
  spec.connector_path = TOANI_SANDBOX_PROBE_PATH;
  spec.wall_timeout = milliseconds(20000);
  if (kSanitized) spec.address_space_bytes = RLIM_INFINITY;  // shadow memory
  auto runner = MakeBwrapRunner();
  auto proc = runner->Start(spec);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  const json targets = {
      {"tcp_port", port},     {"host_pid", ::getpid()},         {"host_file", marker},
      {"host_dir", dir},      {"abstract_name", abstract_name}, {"udp_port", udp_port},
      {"data_dir", data_dir}, {"data_file", data_file}};
  ASSERT_TRUE((*proc)->WriteLine(targets.dump()).ok());
  auto line = (*proc)->ReadLine(milliseconds(15000));
  ASSERT_TRUE(line.ok()) << line.status().ToString() << "\nstderr: " << (*proc)->Stderr();
  auto exit_code = (*proc)->Wait();
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << (*proc)->Stderr();

  const json r = json::parse(*line);
  // Logged so a reviewer can see why each attempt failed, not just that it did.
  std::cout << "probe report: " << r.dump(1) << "\n";
  EXPECT_EQ(r["uid"], 65534);
  EXPECT_EQ(r["euid"], 65534);
  EXPECT_EQ(r["gid"], 65534);
  EXPECT_EQ(r["cap_eff"], "0000000000000000");
  EXPECT_EQ(r["cap_prm"], "0000000000000000");
  EXPECT_EQ(r["cap_bnd"], "0000000000000000");
  EXPECT_EQ(r["no_new_privs"], "1");
  // bwrap --clearenv leaves only the PWD it sets after --chdir.
  for (const auto& name : r["env_names"]) EXPECT_EQ(name, "PWD");
  EXPECT_EQ(r["open_fds"], json::array({0, 1, 2}));
  EXPECT_EQ(r["hostname"], "toani-sandbox");
  // Only the sandbox's own processes: bwrap's pid-1 and the probe.
  EXPECT_LE(r["proc_pids"].size(), 3u) << r["proc_pids"].dump();

  for (const char* attack : {"read_etc_shadow",
                             "read_etc_passwd",
                             "list_root_home",
                             "list_work",
                             "read_host_file",
                             "list_host_dir",
                             "create_in_root",
                             "create_in_run_toani",
                             "create_in_usr",
                             "create_in_etc_ssl",
                             "overwrite_self",
                             "tcp_loopback_listener",
                             "tcp_other_loopback",
                             "abstract_unix_socket",
                             "signal_host_pid",
                             "see_host_pid_in_proc",
                             "setuid_root",
                             "mount_tmpfs",
                             "new_user_namespace",
                             "chroot",
                             "udp_send_loopback",
                             "tcp_socket",
                             "udp_socket",
                             "tcp6_socket",
                             "raw_socket",
                             "netlink_socket",
                             "packet_socket",
                             "read_data_dir",
                             "list_data_dir",
                             "read_other_environ",
                             "read_host_pid_environ",
                             "ptrace_traceme",
                             "ptrace_attach_pid1",
                             "unshare_net",
                             "unshare_mount",
                             "clone_new_pid_ns",
                             "setns",
                             "io_uring_setup",
                             "bpf",
                             "userfaultfd",
                             "keyctl_add_key",
                             "perf_event_open",
                             "fork",
                             "alloc_2gb",
                             "setuid_nobody_to_root_via_setresuid"}) {
    ASSERT_TRUE(r["attempts"].contains(attack)) << attack;
    EXPECT_FALSE(r["attempts"][attack]["succeeded"].get<bool>())
        << attack << " succeeded inside the sandbox";
  }
  EXPECT_EQ(r.dump().find("host-environment-secret"), std::string::npos);
  // The refusals come from the seccomp allow-list, not from luck: EPERM, not ENOENT.
  for (const char* denied : {"tcp_socket", "io_uring_setup", "bpf", "ptrace_traceme", "userfaultfd",
                             "perf_event_open", "fork"}) {
    EXPECT_EQ(r["attempts"][denied]["error"], std::strerror(EPERM)) << denied;
  }
  // Nothing reached the host's loopback listeners.
  EXPECT_LT(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC), 0);
  char byte;
  EXPECT_LT(::recv(udp.get(), &byte, 1, MSG_DONTWAIT), 0);
  EXPECT_LT(::accept4(abstract.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC), 0);
  EXPECT_TRUE(r["attempts"]["create_in_tmp"]["succeeded"].get<bool>())
      << r["attempts"]["create_in_tmp"].dump();
}

}  // namespace
}  // namespace toani

namespace toani {
namespace {

bool Alive(pid_t p) {
  // A zombie is not alive; it has no memory or CPU left to use.
  std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

// SIGKILL is asynchronous: a killed task leaves its cgroup a moment before it is
// gone. Alive only if it is still running after a grace period.
bool StillAliveAfterGrace(pid_t p) {
  for (int i = 0; i < 200 && Alive(p); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Alive(p);
}

bool HostCanStillFork() {
  const pid_t p = ::fork();
  if (p == 0) _exit(0);
  if (p < 0) return false;
  int st = 0;
  ::waitpid(p, &st, 0);
  return WIFEXITED(st);
}

class ResourceAbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kSanitized) GTEST_SKIP() << "resource limits are not meaningful under ASan";
    cgroups_ = CgroupController::Detect()->kind() != CgroupController::Kind::kNone;
  }
  std::unique_ptr<SandboxProcess> Start(const json& in, SandboxSpec spec) {
    spec.connector_path = TOANI_SANDBOX_PROBE_PATH;
    auto proc = runner_->Start(spec);
    EXPECT_TRUE(proc.ok()) << proc.status().ToString();
    if (!proc.ok()) return nullptr;
    EXPECT_TRUE((*proc)->WriteLine(in.dump()).ok());
    return std::move(*proc);
  }
  std::unique_ptr<SandboxRunner> runner_ = MakeBwrapRunner();
  bool cgroups_ = false;
};

TEST_F(ResourceAbuseTest, ForkBombIsBoundedAndLeavesNothing) {
  SandboxSpec spec;
  spec.seccomp = SeccompProfile::kConnectorWithSubprocesses;  // let it try for real
  spec.max_pids = 32;
  spec.wall_timeout = milliseconds(10000);
  auto proc = Start({{"mode", "forkbomb"}}, spec);
  ASSERT_NE(proc, nullptr);
  auto line = proc->ReadLine(milliseconds(8000));
  ASSERT_TRUE(line.ok()) << line.status().ToString() << proc->Stderr();
  const json r = json::parse(*line);
  std::cout << "fork bomb: " << r.dump() << "\n";
  // pids.max (32) counts bwrap's two processes and the probe too; without cgroups,
  // RLIMIT_NPROC (256 by default) is what stops it.
  EXPECT_LT(r["forked"].get<int>(), cgroups_ ? 32 : 256);
  const std::vector<pid_t> pids = proc->HostPids();
  if (cgroups_) {
    EXPECT_GT(pids.size(), 3u);
  }
  ASSERT_TRUE(proc->Kill().ok());
  (void)proc->Wait();
  proc.reset();
  for (pid_t p : pids)
    EXPECT_FALSE(StillAliveAfterGrace(p)) << "pid " << p << " outlived its sandbox";
  EXPECT_TRUE(HostCanStillFork());
}

TEST_F(ResourceAbuseTest, TwoGigabytesCannotBeAllocated) {
  // First layer: RLIMIT_AS (1 GiB) makes the allocation itself fail.
  SandboxSpec spec;
  auto proc = Start({{"mode", "alloc"}, {"alloc_mb", 2048}}, spec);
  ASSERT_NE(proc, nullptr);
  auto line = proc->ReadLine(milliseconds(10000));
  ASSERT_TRUE(line.ok()) << line.status().ToString() << proc->Stderr();
  EXPECT_FALSE(json::parse(*line)["succeeded"].get<bool>()) << *line;
  proc.reset();
  if (!cgroups_) GTEST_SKIP() << "no usable cgroups on this host: memory cgroup not tested";
  // Second layer: without RLIMIT_AS, the memory cgroup (128 MiB) kills it.
  spec.address_space_bytes = RLIM_INFINITY;
  spec.memory_bytes = 128ull << 20;
  proc = Start({{"mode", "alloc"}, {"alloc_mb", 2048}}, spec);
  ASSERT_NE(proc, nullptr);
  line = proc->ReadLine(milliseconds(10000));
  EXPECT_FALSE(line.ok()) << "allocation of 2 GiB succeeded: " << *line;
  auto code = proc->Wait();
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_NE(*code, 0);
  EXPECT_TRUE(proc->OomKilled());
  EXPECT_TRUE(HostCanStillFork());
}

TEST_F(ResourceAbuseTest, SpinningForeverIsKilledAtTheWallTimeout) {
  SandboxSpec spec;
  spec.wall_timeout = milliseconds(1500);
  const auto t0 = std::chrono::steady_clock::now();
  auto proc = Start({{"mode", "spin"}}, spec);
  ASSERT_NE(proc, nullptr);
  const std::vector<pid_t> pids = proc->HostPids();
  auto code = proc->Wait();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(code.ok());
  EXPECT_EQ(code.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(took, std::chrono::milliseconds(4000));
  for (pid_t p : pids) EXPECT_FALSE(StillAliveAfterGrace(p));
}

TEST_F(ResourceAbuseTest, SpinningIsKilledByTheCpuLimit) {
  SandboxSpec spec;
  spec.wall_timeout = milliseconds(20000);
  spec.cpu_seconds = 1;  // RLIMIT_CPU: SIGKILL after 1 s of CPU
  const auto t0 = std::chrono::steady_clock::now();
  auto proc = Start({{"mode", "spin"}}, spec);
  ASSERT_NE(proc, nullptr);
  auto code = proc->Wait();
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_NE(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(10000));
}

TEST_F(ResourceAbuseTest, NothingOutlivesTheExecution) {
  SandboxSpec spec;
  spec.seccomp = SeccompProfile::kConnectorWithSubprocesses;
  spec.wall_timeout = milliseconds(10000);
  auto proc = Start({{"mode", "daemon"}}, spec);
  ASSERT_NE(proc, nullptr);
  auto line = proc->ReadLine(milliseconds(8000));
  ASSERT_TRUE(line.ok()) << line.status().ToString() << proc->Stderr();
  std::vector<pid_t> pids = proc->HostPids();
  auto code = proc->Wait();
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  const std::vector<pid_t> after = proc->HostPids();
  EXPECT_TRUE(after.empty()) << after.size() << " processes left in the sandbox cgroup";
  proc.reset();
  for (pid_t p : pids)
    EXPECT_FALSE(StillAliveAfterGrace(p)) << "pid " << p << " outlived its execution";
}

}  // namespace
}  // namespace toani
