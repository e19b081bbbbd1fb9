#include "sandbox/seccomp_policy.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace toani {
namespace {

constexpr uint64_t kInt = 0xFFFFFFFFu;  // compare an int argument's 32 bits only

// Namespace-creating clone flags: never allowed, whatever the profile.
constexpr uint64_t kNamespaceFlags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                                     CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;

struct CtxDeleter {
  void operator()(scmp_filter_ctx c) const { seccomp_release(c); }
};

}  // namespace

SyscallPolicyBuilder& SyscallPolicyBuilder::Allow(std::string_view syscall, std::string_view why) {
  rules_.push_back({std::string(syscall), {}, 0, std::string(why)});
  return *this;
}

SyscallPolicyBuilder& SyscallPolicyBuilder::AllowIf(std::string_view syscall,
                                                    std::vector<SyscallArgRule> rules,
                                                    std::string_view why) {
  rules_.push_back({std::string(syscall), std::move(rules), 0, std::string(why)});
  return *this;
}

SyscallPolicyBuilder& SyscallPolicyBuilder::FailWith(std::string_view syscall, int err,
                                                     std::string_view why) {
  rules_.push_back({std::string(syscall), {}, err, std::string(why)});
  return *this;
}

std::vector<std::string> SyscallPolicyBuilder::Describe() const {
  std::vector<std::string> out;
  for (const Rule& r : rules_) {
    std::string line = r.errno_value != 0
                           ? "fail " + r.name + " with " + strerrorname_np(r.errno_value)
                           : "allow " + r.name;
    if (!r.args.empty()) line += " (argument-restricted)";
    out.push_back(line + ": " + r.why);
  }
  return out;
}

StatusOr<std::vector<uint8_t>> SyscallPolicyBuilder::BuildBpf() const {
  // Default: refuse with EPERM. A clean error, not a kill, so libraries that probe for a
  // feature (curl's IPv6 check opens an AF_INET6 socket) degrade instead of crashing.
  std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) return Status::Internal("seccomp_init failed");
  // Only the native ABI; an int 0x80 (i386) or x32 syscall kills the process.
  if (seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0) {
    return Status::Internal("seccomp: cannot set the bad-architecture action");
  }
  for (const Rule& r : rules_) {
    const int nr = seccomp_syscall_resolve_name(r.name.c_str());
    if (nr == __NR_SCMP_ERROR) return Status::InvalidArgument("seccomp: unknown syscall " + r.name);
    std::vector<scmp_arg_cmp> cmps;
    for (const SyscallArgRule& a : r.args) {
      cmps.push_back({a.index, SCMP_CMP_MASKED_EQ, a.mask, a.value});
    }
    const uint32_t action =
        r.errno_value != 0 ? SCMP_ACT_ERRNO(static_cast<uint32_t>(r.errno_value)) : SCMP_ACT_ALLOW;
    const int rc = seccomp_rule_add_array(ctx.get(), action, nr, static_cast<unsigned>(cmps.size()),
                                          cmps.data());
    if (rc != 0) {
      return Status::Internal("seccomp: cannot add rule for " + r.name + ": " + std::strerror(-rc));
    }
  }
  // libseccomp 2.5 exports to a file descriptor only: go through an anonymous memfd.
  const int fd = ::memfd_create("toani-seccomp", MFD_CLOEXEC);
  if (fd < 0) return Status::Internal(std::string("memfd_create: ") + std::strerror(errno));
  std::vector<uint8_t> bpf;
  int rc = seccomp_export_bpf(ctx.get(), fd);
  if (rc == 0 && ::lseek(fd, 0, SEEK_SET) == 0) {
    uint8_t buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) bpf.insert(bpf.end(), buf, buf + n);
  }
  ::close(fd);
  if (rc != 0 || bpf.empty() || bpf.size() % 8 != 0) {
    return Status::Internal("seccomp: cannot export the BPF program");
  }
  return bpf;
}

SyscallPolicyBuilder MakeSandboxPolicy(SeccompProfile profile) {
  SyscallPolicyBuilder b;
  if (profile == SeccompProfile::kNone) return b;
  using R = SyscallArgRule;
  // --- Running at all: bwrap executes the connector after loading the filter, and the
  // dynamic loader then maps libraries and sets up TLS.
  b.Allow("execve", "bwrap's final exec of the connector (no_new_privs stays set)")
      .Allow("arch_prctl", "the loader sets the TLS register")
      .Allow("brk", "malloc")
      .Allow("mmap", "the loader maps libraries; malloc")
      .Allow("munmap", "freeing mappings")
      .Allow("mprotect", "the loader applies RELRO; guard pages")
      .Allow("mremap", "realloc of large blocks")
      .Allow("madvise", "malloc trimming; libsodium MADV_DONTDUMP on secrets")
      .Allow("mlock", "libsodium locks secret memory")
      .Allow("munlock", "libsodium unlocks before freeing")
      .Allow("set_tid_address", "glibc start-up")
      .Allow("set_robust_list", "glibc start-up and every thread")
      .Allow("rseq", "glibc registers restartable sequences")
      .AllowIf("prlimit64", {R{2, ~uint64_t{0}, 0}},
               "reading limits only (new_limit == NULL): the loader sizes the stack")
      .Allow("getrlimit", "reading limits")
      .Allow("wait4", "bwrap's pid-1 init runs under the filter too and reaps the connector")
      .Allow("exit", "thread exit")
      .Allow("exit_group", "process exit");
  // --- Files: only what the mount namespace shows (read-only except /tmp).
  b.Allow("read", "stdin, files, sockets")
      .Allow("write", "stdout, stderr, sockets")
      .Allow("readv", "stdio")
      .Allow("writev", "stdio")
      .Allow("pread64", "the loader reads ELF headers")
      .Allow("openat", "libraries, CA certificates, /dev/urandom")
      .Allow("open", "older code paths of the same")
      .Allow("close", "closing descriptors")
      .Allow("close_range", "closing descriptors in bulk")
      .Allow("fstat", "stdio buffering, file sizes")
      .Allow("newfstatat", "stat() by glibc 2.33+")
      .Allow("stat", "stat() (legacy entry)")
      .Allow("lstat", "lstat() (legacy entry)")
      .Allow("statx", "stat() by newer code")
      .Allow("statfs", "OpenSSL/glibc probe file systems")
      .Allow("fstatfs", "the same on a descriptor")
      .Allow("lseek", "file positions")
      .Allow("access", "the loader checks ld.so.preload")
      .Allow("faccessat", "access()")
      .Allow("faccessat2", "access() on glibc 2.33+")
      .Allow("readlink", "the loader resolves /proc/self/exe")
      .Allow("readlinkat", "readlink()")
      .Allow("getdents64", "OpenSSL reads the CA directory")
      .Allow("getcwd", "getcwd()")
      .Allow("fcntl", "O_NONBLOCK, FD_CLOEXEC")
      .Allow("dup", "descriptor plumbing")
      .Allow("dup2", "descriptor plumbing")
      .Allow("dup3", "descriptor plumbing")
      .Allow("pipe2", "libcurl's wake-up pipe")
      .Allow("pipe", "the same, legacy entry")
      .Allow("eventfd2", "libcurl's wake-up eventfd")
      .Allow("umask", "glibc tmpfile helpers")
      .Allow("unlink", "removing its own files in /tmp")
      .Allow("unlinkat", "the same");
  // Terminal/descriptor ioctls only: isatty() and non-blocking flags. TIOCSTI and
  // everything else is refused.
  for (const uint64_t req : {uint64_t{TCGETS}, uint64_t{FIONREAD}, uint64_t{FIONBIO},
                             uint64_t{FIOCLEX}, uint64_t{FIONCLEX}}) {
    b.AllowIf("ioctl", {R{1, kInt, req}}, "isatty(), FIONREAD, FIONBIO, FD_CLOEXEC");
  }
  // --- Threads (OpenSSL and libcurl may start them), signals, time.
  b.AllowIf("clone", {R{0, kNamespaceFlags | CLONE_THREAD, CLONE_THREAD}},
            "threads only: CLONE_THREAD set, no namespace flags")
      .FailWith("clone3", ENOSYS,
                "glibc tries clone3 first; ENOSYS makes it fall back to clone, whose flags "
                "the filter can inspect (clone3 passes them in memory)")
      .Allow("futex", "thread synchronisation")
      .Allow("sched_yield", "spin-wait back-off")
      .Allow("sched_getaffinity", "CPU count for thread pools")
      .Allow("rt_sigaction", "signal handlers")
      .Allow("rt_sigprocmask", "signal masks")
      .Allow("rt_sigreturn", "returning from a handler")
      .Allow("sigaltstack", "alternate signal stacks")
      .Allow("tgkill", "raise()/abort() on itself (the pid namespace hides everyone else)")
      .Allow("tkill", "the same")
      .Allow("getpid", "identity")
      .Allow("gettid", "identity")
      .Allow("getppid", "identity")
      .Allow("getuid", "identity")
      .Allow("geteuid", "identity")
      .Allow("getgid", "identity")
      .Allow("getegid", "identity")
      .Allow("getresuid", "identity")
      .Allow("getresgid", "identity")
      .Allow("getgroups", "identity")
      .Allow("uname", "OpenSSL/libcurl version strings")
      .Allow("sysinfo", "memory size heuristics")
      .Allow("getrusage", "resource accounting")
      .Allow("clock_gettime", "timeouts (normally via the vDSO)")
      .Allow("clock_getres", "timer resolution")
      .Allow("gettimeofday", "timeouts")
      .Allow("time", "timestamps")
      .Allow("nanosleep", "sleeps")
      .Allow("clock_nanosleep", "sleeps")
      .Allow("getrandom", "the ephemeral X25519 key; TLS randomness")
      .AllowIf("prctl", {R{0, kInt, PR_SET_DUMPABLE}}, "the connector makes itself undumpable")
      .AllowIf("prctl", {R{0, kInt, PR_GET_DUMPABLE}}, "reading the same")
      .AllowIf("prctl", {R{0, kInt, PR_SET_NAME}}, "thread names")
      .AllowIf("prctl", {R{0, kInt, PR_GET_NAME}}, "thread names");
  // --- I/O multiplexing and sockets: AF_UNIX only. The network namespace is empty
  // anyway; refusing IP sockets also shuts out the kernel's IP/netlink/packet code.
  b.Allow("poll", "waiting for sockets")
      .Allow("ppoll", "the same")
      .Allow("select", "the same")
      .Allow("pselect6", "the same")
      .Allow("epoll_create1", "libcurl's event loop")
      .Allow("epoll_ctl", "the same")
      .Allow("epoll_wait", "the same")
      .Allow("epoll_pwait", "the same")
      .AllowIf("socket", {R{0, kInt, AF_UNIX}}, "the egress proxy's Unix socket only")
      .AllowIf("socketpair", {R{0, kInt, AF_UNIX}}, "libcurl's internal wake-up pair")
      .Allow("connect", "to the egress socket (nothing else exists)")
      .Allow("getsockopt", "SO_ERROR after a non-blocking connect")
      .Allow("setsockopt", "socket buffer and timeout options")
      .Allow("getsockname", "libcurl logs local addresses")
      .Allow("getpeername", "the same")
      .Allow("sendto", "socket I/O")
      .Allow("recvfrom", "socket I/O")
      .Allow("sendmsg", "socket I/O")
      .Allow("recvmsg", "socket I/O")
      .Allow("shutdown", "half-closing a connection");
  if (profile == SeccompProfile::kConnectorWithSubprocesses ||
      profile == SeccompProfile::kBrowser) {
    b.AllowIf("clone", {R{0, kNamespaceFlags, 0}}, "new processes, still without namespaces")
        .Allow("fork", "new processes (bounded by the pids cgroup and RLIMIT_NPROC)")
        .Allow("vfork", "posix_spawn")
        .Allow("waitid", "reaping children")
        .Allow("kill", "signalling its own children (the pid namespace hides the rest)")
        .Allow("setpgid", "process groups for helpers")
        .Allow("setsid", "sessions for helpers")
        .Allow("pause", "helpers that wait for a signal");
  }
  if (profile == SeccompProfile::kBrowser) {
    // Sockets: the network namespace has only the sandbox's loopback, so an IP socket
    // reaches nothing but the connector's SOCKS relay (which forwards to the egress
    // proxy). Netlink, packet and raw sockets stay refused.
    for (const int family : {AF_INET, AF_INET6}) {
      b.AllowIf("socket", {R{0, kInt, static_cast<uint64_t>(family)}},
                "Chromium's and the relay's loopback sockets (empty network namespace)");
    }
    b.Allow("bind", "the connector's loopback SOCKS relay")
        .Allow("listen", "the same")
        .Allow("accept", "the same")
        .Allow("accept4", "the same")
        .Allow("sendmmsg", "Chromium's socket I/O")
        .Allow("recvmmsg", "the same")
        .Allow("memfd_create", "Chromium's shared memory between its processes")
        .Allow("ftruncate", "sizing shared memory and profile files")
        .Allow("fallocate", "the same")
        .Allow("pwrite64", "profile databases under /tmp")
        .Allow("fsync", "the same")
        .Allow("fdatasync", "the same")
        .Allow("flock", "profile lock")
        .Allow("mkdir", "the profile directory under /tmp")
        .Allow("mkdirat", "the same")
        .Allow("rename", "atomic profile writes")
        .Allow("renameat", "the same")
        .Allow("renameat2", "the same")
        .Allow("symlink", "the profile's SingletonLock")
        .Allow("symlinkat", "the same")
        .Allow("link", "the same")
        .Allow("creat", "profile files")
        .Allow("fchmod", "profile files")
        .Allow("fchown", "profile files (own uid only; no capabilities)")
        .Allow("chdir", "Chromium's processes change directory")
        .Allow("fadvise64", "file read-ahead hints")
        .Allow("inotify_init", "Chromium watches a few files")
        .Allow("inotify_init1", "the same")
        .Allow("inotify_add_watch", "the same")
        .Allow("inotify_rm_watch", "the same")
        .Allow("pkey_alloc", "V8's memory protection keys")
        .Allow("pkey_free", "the same")
        .Allow("pkey_mprotect", "the same")
        .Allow("mincore", "V8 and PartitionAlloc probe pages")
        .Allow("membarrier", "V8")
        .Allow("getpriority", "thread priorities")
        .Allow("setpriority", "lowering its own threads' priority (raising needs a capability)")
        .Allow("sched_getscheduler", "thread priorities")
        .Allow("sched_getparam", "the same")
        .Allow("sched_getattr", "the same")
        .Allow("timerfd_create", "event loop timers")
        .Allow("timerfd_settime", "the same")
        .Allow("restart_syscall", "interrupted sleeps")
        .Allow("getpgid", "process groups")
        .Allow("getsid", "the same")
        .AllowIf("prctl", {R{0, kInt, 0x53564d41}}, "PR_SET_VMA: naming anonymous mappings")
        .AllowIf("prctl", {R{0, kInt, PR_CAPBSET_READ}}, "reading the (empty) capability set")
        .AllowIf("prctl", {R{0, kInt, PR_SET_NO_NEW_PRIVS}}, "already set; setting it again")
        .AllowIf("prctl", {R{0, kInt, PR_GET_NO_NEW_PRIVS}}, "reading it")
        .AllowIf("prctl", {R{0, kInt, PR_SET_PDEATHSIG}}, "children die with the browser")
        .AllowIf("prctl", {R{0, kInt, PR_SET_TIMERSLACK}}, "timer slack of its threads");
  }
  // Everything not named above — ptrace, mount, umount2, pivot_root, chroot, unshare,
  // setns, bpf, io_uring_*, userfaultfd, keyctl, add_key, perf_event_open, kexec_*,
  // init_module, setuid & co., process_vm_*, open_by_handle_at, … — fails with EPERM.
  return b;
}

}  // namespace toani
