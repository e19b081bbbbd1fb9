// Memory and process-count limits for one sandbox through cgroups, v2 or v1, whichever
// the host lets us use. Detection happens once (CgroupController::Detect); when neither
// works, Describe() says why and the runner logs it at start-up: the sandbox then has
// only its rlimits (RLIMIT_AS, RLIMIT_NPROC), which bound a process, not the sandbox.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace toani {

struct CgroupLimits {
  uint64_t memory_bytes = 256ull << 20;  // memory.max / memory.limit_in_bytes
  uint64_t max_pids = 64;                // pids.max
};

// One sandbox's cgroup(s). The sandbox's first process joins by writing "0" to each of
// join_files() before it executes bwrap (so nothing it starts can be outside). The
// destructor kills every process still inside and removes the directories.
class SandboxCgroup {
 public:
  SandboxCgroup(std::vector<std::string> dirs, bool has_kill_file);
  ~SandboxCgroup();
  SandboxCgroup(const SandboxCgroup&) = delete;
  SandboxCgroup& operator=(const SandboxCgroup&) = delete;

  // The cgroup.procs files to join (one per hierarchy for v1, one for v2).
  const std::vector<std::string>& join_files() const { return join_files_; }
  // Host pids currently inside (union over hierarchies).
  std::vector<pid_t> Pids() const;
  // SIGKILLs everything inside until it is empty (or 2 s pass). OK when empty.
  Status KillAll();
  // One pass of SIGKILL to everything inside now (cgroup.kill on v2), without waiting
  // for the processes to be gone; KillAll() (or the destructor) waits.
  void SignalAll();
  // True if the memory controller killed something for exceeding the limit.
  bool OomKilled() const;

 private:
  std::vector<std::string> dirs_, join_files_;
  bool has_kill_file_;
};

class CgroupController {
 public:
  enum class Kind { kNone, kV1, kV2 };
  // Looks at /proc/self/cgroup and /proc/self/mountinfo, and tries to create (and
  // remove) a probe cgroup to check that limits can actually be set.
  static std::unique_ptr<CgroupController> Detect();

  Kind kind() const { return kind_; }
  // "cgroup v1 (memory at …, pids at …)" or why none can be used.
  const std::string& Describe() const { return description_; }
  // A fresh cgroup with `limits` set. Unavailable when kind() is kNone or the kernel
  // refuses. Thread-safe.
  StatusOr<std::unique_ptr<SandboxCgroup>> Create(const CgroupLimits& limits);

 private:
  Kind kind_ = Kind::kNone;
  std::string description_;
  // v2: {parent}; v1: {memory parent, pids parent}. Children are made below these.
  std::string v2_parent_, v1_memory_parent_, v1_pids_parent_;
};

}  // namespace toani
