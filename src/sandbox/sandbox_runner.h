// Runs one connector in one fresh, disposable sandbox and talks to it over
// newline-delimited stdin/stdout (docs/connector-protocol.md). The server depends on
// the SandboxRunner interface; MakeBwrapRunner() is the bubblewrap implementation.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sandbox/seccomp_policy.h"

namespace toani {

// A host path made visible read-only inside the sandbox.
struct BindMount {
  std::string host_path;     // must exist; must be readable by the sandbox uid (see below)
  std::string sandbox_path;  // absolute, no "..", not under /proc, /dev, /usr or /tmp
};

inline constexpr std::string_view kSandboxConnectorPath = "/run/toani/connector";
inline constexpr std::string_view kSandboxEgressSocketPath = "/run/toani/egress.sock";

struct SandboxSpec {
  // Host path of the executable; bound read-only at /run/toani/connector and executed
  // with no arguments and an empty environment. Required.
  std::string connector_path;
  // Extra read-only files or directories (e.g. a CA bundle). Default: none.
  std::vector<BindMount> ro_binds;
  // Host path of the egress proxy's Unix socket, bound at /run/toani/egress.sock.
  // Empty: the sandbox has no way out at all.
  std::string egress_socket_host_path;
  // Deadline for the whole execution, from Start(). Default 15 s.
  std::chrono::milliseconds wall_timeout{15000};
  // Size cap of the writable /tmp tmpfs (also RLIMIT_FSIZE). Default 16 MiB.
  uint64_t tmpfs_bytes = 16 << 20;
  // RLIMIT_AS of bwrap and the connector; RLIM_INFINITY for none (sanitizer builds).
  // Default 1 GiB.
  uint64_t address_space_bytes = 1ull << 30;
  // RLIMIT_NPROC; counts all processes of the host uid the sandbox runs as. Default 256.
  uint64_t max_processes = 256;
  // cgroup limits for the sandbox as a whole (when the host has usable cgroups; see
  // CgroupController). memory.max / memory.limit_in_bytes; default 256 MiB.
  uint64_t memory_bytes = 256ull << 20;
  // pids.max: every process and thread in the sandbox, bwrap included. Default 64.
  uint64_t max_pids = 64;
  // RLIMIT_CPU in seconds (SIGKILL when exceeded); 0 = wall timeout rounded up + 1 s.
  uint64_t cpu_seconds = 0;
  // System calls the connector may make (seccomp_policy.h). Default kConnector.
  SeccompProfile seccomp = SeccompProfile::kConnector;
  // Longest stdout line ReadLine accepts. Default 8 MiB.
  size_t max_line_bytes = 8 << 20;
  // stderr kept for Stderr(); the rest is read and dropped. Default 64 KiB.
  size_t max_stderr_bytes = 64 << 10;
};

// One running sandbox. Not thread-safe: use from one thread at a time. Destruction
// kills the sandbox (if still running) and reaps it.
class SandboxProcess {
 public:
  virtual ~SandboxProcess();
  // Writes `line` plus '\n' to the connector's stdin. InvalidArgument if `line`
  // contains '\n'; Unavailable if the sandbox is gone or the wall deadline passes.
  virtual Status WriteLine(std::string_view line) = 0;
  // Next stdout line without its '\n'. Waits at most `timeout` (and never past the wall
  // deadline): Unavailable on timeout, EOF or a line longer than max_line_bytes.
  virtual StatusOr<std::string> ReadLine(std::chrono::milliseconds timeout) = 0;
  // SIGKILLs the whole sandbox (bwrap's process group; the pid namespace dies with it).
  // Idempotent.
  virtual Status Kill() = 0;
  // SIGKILLs every process of the sandbox now (bwrap's process group, and one pass over
  // its cgroup's members) without waiting for them to be gone: nothing in the sandbox
  // runs another instruction, but reaping and the cgroup's removal are left to Kill(),
  // Wait() or the destructor, which may run on another thread (SandboxReaper).
  virtual void SignalKill() { (void)Kill(); }
  // Sets the nice value of every thread of every process the sandbox holds now
  // (a pre-started sandbox waits at low priority and gets the normal one back when an
  // execution takes it). Raising priority needs CAP_SYS_NICE or a large enough
  // RLIMIT_NICE; PermissionDenied otherwise.
  virtual Status SetNice(int nice) {
    (void)nice;
    return Status::Ok();
  }
  // Waits for exit, at most until the wall deadline (then kills). Returns the exit code,
  // or 128 + signal number if killed by a signal; Unavailable if the wall timeout fired.
  virtual StatusOr<int> Wait() = 0;
  // The first max_stderr_bytes of the sandbox's stderr seen so far (bwrap's own errors
  // land here), with credential-shaped strings replaced (ScrubCredentialShapes). For
  // operators only: never forward to agents.
  virtual std::string Stderr() const = 0;
  // Restarts the wall deadline at now + `wall_timeout` (a sandbox started ahead of its
  // execution gets the whole budget when the execution begins). RLIMIT_CPU is not
  // reset; an idle sandbox blocked on stdin uses none.
  virtual void RestartDeadline(std::chrono::milliseconds wall_timeout) = 0;
  // True while bwrap has not exited (reaps it if it has).
  virtual bool Running() = 0;
  // Host pid of the bwrap process (for logs and tests).
  virtual pid_t pid() const = 0;
  // Host pids of every process the sandbox holds now (its cgroup's members; without
  // cgroups just pid()). For tests and operators.
  virtual std::vector<pid_t> HostPids() const { return {pid()}; }
  // True if the sandbox's memory limit killed one of its processes.
  virtual bool OomKilled() const { return false; }
};

class SandboxRunner {
 public:
  virtual ~SandboxRunner();
  // Starts a fresh sandbox. InvalidArgument for a bad spec (missing paths, bad sandbox
  // paths); Internal if fork/exec fails. Thread-safe.
  // Caveat: the sandbox is killed (PR_SET_PDEATHSIG) when the *thread* that called
  // Start() exits, so call it from a thread that outlives the execution.
  virtual StatusOr<std::unique_ptr<SandboxProcess>> Start(const SandboxSpec& spec) = 0;
};

struct BwrapOptions {
  std::string bwrap_path = "/usr/bin/bwrap";
  // When the server runs as root, drop to this host uid/gid (and no supplementary
  // groups) before executing bwrap, so the sandbox's uid 65534 is not host root.
  // Ignored when not root. Default true.
  bool drop_root = true;
  uid_t host_uid = 65534;
  gid_t host_gid = 65534;
  // Put each sandbox in its own memory+pids cgroup when the host allows it. Default
  // true. When cgroups cannot be used the runner says so once, at construction.
  bool use_cgroups = true;
};

std::unique_ptr<SandboxRunner> MakeBwrapRunner(BwrapOptions options);
std::unique_ptr<SandboxRunner> MakeBwrapRunner(std::string bwrap_path = "/usr/bin/bwrap");

// Descriptor number at which the child hands bwrap the seccomp BPF program.
inline constexpr int kSeccompFd = 3;

// The bwrap command line (argv[0] = bwrap path) for `spec`; exposed for tests and docs.
StatusOr<std::vector<std::string>> BuildBwrapArgv(const BwrapOptions& options,
                                                  const SandboxSpec& spec);

}  // namespace toani
