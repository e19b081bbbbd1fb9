// The sandbox's system-call allow-list, built like Sandboxed API's PolicyBuilder: every
// allowed call is named with the reason it is needed; everything else is refused with
// EPERM, and a call made through another architecture's ABI (x32, i386) kills the
// process. The filter is compiled with libseccomp and handed to bubblewrap as a BPF
// program (`bwrap --seccomp FD`), which loads it immediately before it executes the
// connector — so the connector's first instruction already runs under it, and hostile
// code gets no window to act before the filter exists (docs/connector-protocol.md §6).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace toani {

enum class SeccompProfile {
  // No filter at all. Only for tests that need to observe what another layer (cgroups,
  // rlimits, namespaces) stops on its own.
  kNone,
  // What toani-connector (libc, libstdc++, libcurl, OpenSSL, libsodium) needs: files it
  // was given, memory, threads, AF_UNIX sockets (the egress proxy), time, randomness.
  // No new processes, no IP sockets, no ptrace/mount/namespaces/bpf/io_uring/keyctl/
  // userfaultfd/perf. Default.
  kConnector,
  // kConnector plus fork/vfork/wait/execve of further programs (for connectors that run
  // a helper such as a headless browser). Process counts are then bounded by the pids
  // cgroup and RLIMIT_NPROC.
  kConnectorWithSubprocesses,
  // kConnectorWithSubprocesses plus what Debian's Chromium (headless, --no-sandbox, no
  // zygote) needs: IP sockets (the sandbox's network namespace holds only its own
  // loopback: Chromium talks to the connector's SOCKS relay there), memfd shared memory,
  // inotify, memory protection keys, profile files under /tmp. Still no ptrace, mount,
  // namespaces, bpf, io_uring, keyctl, userfaultfd, perf or setuid
  // (docs/connector-protocol.md §6.4).
  kBrowser,
};

// One comparison on a syscall argument: (arg[index] & mask) == value.
struct SyscallArgRule {
  unsigned index = 0;
  uint64_t mask = ~uint64_t{0};
  uint64_t value = 0;
};

// Collects allowed system calls; Build() produces the BPF program. Not thread-safe.
class SyscallPolicyBuilder {
 public:
  // Allows `syscall` (a name as libseccomp knows it) unconditionally. `why` is kept for
  // Describe(); it must say what needs the call.
  SyscallPolicyBuilder& Allow(std::string_view syscall, std::string_view why);
  // Allows `syscall` only when every rule holds. Several AllowIf for one call are ORed.
  SyscallPolicyBuilder& AllowIf(std::string_view syscall, std::vector<SyscallArgRule> rules,
                                std::string_view why);
  // Makes `syscall` fail with `err` instead of EPERM (e.g. clone3 → ENOSYS, so glibc
  // falls back to clone, whose flags the filter can inspect).
  SyscallPolicyBuilder& FailWith(std::string_view syscall, int err, std::string_view why);

  // The filter as a classic-BPF program (struct sock_filter array), for `bwrap
  // --seccomp`. InvalidArgument if a name is unknown to libseccomp, Internal on
  // libseccomp errors.
  StatusOr<std::vector<uint8_t>> BuildBpf() const;
  // One line per rule: "allow read: reading stdin, files and sockets".
  std::vector<std::string> Describe() const;

 private:
  struct Rule {
    std::string name;
    std::vector<SyscallArgRule> args;
    int errno_value = 0;  // 0: allow
    std::string why;
  };
  std::vector<Rule> rules_;
};

// The builder for `profile` (kNone: an empty builder; do not build it).
SyscallPolicyBuilder MakeSandboxPolicy(SeccompProfile profile);

}  // namespace toani
