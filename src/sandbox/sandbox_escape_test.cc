// Runs a hostile program (sandbox_probe) in the bwrap sandbox and checks that every
// escape attempt failed: host files, writes outside /tmp, loopback and abstract-socket
// networking, host pids, privileges.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

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
      {"tcp_port", port}, {"host_pid", ::getpid()},         {"host_file", marker},
      {"host_dir", dir},  {"abstract_name", abstract_name}, {"udp_port", udp_port}};
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

  for (const char* attack :
       {"read_etc_shadow",    "read_etc_passwd",      "list_root_home",     "list_work",
        "read_host_file",     "list_host_dir",        "create_in_root",     "create_in_run_toani",
        "create_in_usr",      "create_in_etc_ssl",    "overwrite_self",     "tcp_loopback_listener",
        "tcp_other_loopback", "abstract_unix_socket", "signal_host_pid",    "see_host_pid_in_proc",
        "setuid_root",        "mount_tmpfs",          "new_user_namespace", "chroot"}) {
    ASSERT_TRUE(r["attempts"].contains(attack)) << attack;
    EXPECT_FALSE(r["attempts"][attack]["succeeded"].get<bool>())
        << attack << " succeeded inside the sandbox";
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
