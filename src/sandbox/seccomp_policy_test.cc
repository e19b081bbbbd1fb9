#include "sandbox/seccomp_policy.h"

#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace toani {
namespace {

// Runs `body` in a forked child with `bpf` installed; returns the child's exit code.
template <typename F>
int RunFiltered(const std::vector<uint8_t>& bpf, F body) {
  const pid_t p = ::fork();
  if (p == 0) {
    sock_fprog prog{static_cast<unsigned short>(bpf.size() / sizeof(sock_filter)),
                    reinterpret_cast<sock_filter*>(const_cast<uint8_t*>(bpf.data()))};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      _exit(100);
    }
    _exit(body());
  }
  int st = 0;
  ::waitpid(p, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(SeccompPolicyTest, EveryRuleSaysWhy) {
  for (const std::string& line : MakeSandboxPolicy(SeccompProfile::kConnector).Describe()) {
    const auto colon = line.find(": ");
    ASSERT_NE(colon, std::string::npos) << line;
    EXPECT_GT(line.size(), colon + 5) << "no reason given: " << line;
  }
}

TEST(SeccompPolicyTest, UnknownSyscallIsRejected) {
  SyscallPolicyBuilder b;
  b.Allow("no_such_syscall", "test");
  EXPECT_EQ(b.BuildBpf().status().code(), StatusCode::kInvalidArgument);
}

TEST(SeccompPolicyTest, ConnectorProfileRefusesWhatIsNotNamed) {
  auto bpf = MakeSandboxPolicy(SeccompProfile::kConnector).BuildBpf();
  ASSERT_TRUE(bpf.ok()) << bpf.status().ToString();
  // Allowed: AF_UNIX sockets, getpid.
  EXPECT_EQ(RunFiltered(*bpf,
                        [] {
                          const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
                          return fd >= 0 && ::getpid() > 0 ? 0 : 1;
                        }),
            0);
  // Refused with EPERM: IP sockets, ptrace, mount, unshare, fork; clone3 → ENOSYS.
  EXPECT_EQ(RunFiltered(*bpf,
                        [] {
                          if (::socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM) return 1;
                          if (::syscall(SYS_ptrace, 0, 0, 0, 0) == 0 || errno != EPERM) return 2;
                          if (::syscall(SYS_unshare, 0) == 0 || errno != EPERM) return 3;
                          if (::syscall(SYS_fork) >= 0 || errno != EPERM) return 4;
                          if (::syscall(SYS_io_uring_setup, 1, nullptr) >= 0 || errno != EPERM)
                            return 5;
                          if (::syscall(SYS_clone3, nullptr, 0) >= 0 || errno != ENOSYS) return 6;
                          return 0;
                        }),
            0);
}

TEST(SeccompPolicyTest, SubprocessProfileAllowsForkButNoNamespaces) {
  auto bpf = MakeSandboxPolicy(SeccompProfile::kConnectorWithSubprocesses).BuildBpf();
  ASSERT_TRUE(bpf.ok());
  EXPECT_EQ(RunFiltered(*bpf,
                        [] {
                          const pid_t c = ::fork();
                          if (c == 0) _exit(0);
                          if (c < 0) return 1;
                          ::waitpid(c, nullptr, 0);
                          if (::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0) >= 0)
                            return 2;
                          return errno == EPERM ? 0 : 3;
                        }),
            0);
}

}  // namespace
}  // namespace toani
