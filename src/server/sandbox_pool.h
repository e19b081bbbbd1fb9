// Sandboxes made ready ahead of their execution (docs/connector-protocol.md §6.5).
//
// PrepareSandbox() does everything of a connector sandbox that does not depend on the
// execution: a private directory, an egress proxy socket that is bound into the sandbox
// but does not listen yet, the bwrap sandbox (namespaces, seccomp, cgroup, rlimits) with
// the connector started, and the connector's hello (its ephemeral X25519 public key,
// made inside the sandbox). The execution then binds the proxy to its action's
// allow-list, restarts the wall deadline, has keyd seal the credential to that key and
// hands over the job.
//
// SandboxPool keeps up to `size` such sandboxes ready, refilled by up to two background
// threads. Take() removes one for good: each is used for exactly one execution and is
// killed with everything it started when that execution ends; nothing is ever returned
// to the pool. The refill stays out of the way of executions: the thread and everything
// it starts (bwrap, the connector) run at nice 19 where the server can give a taken
// sandbox its normal priority back (CAP_SYS_NICE or RLIMIT_NICE), and a taken sandbox is
// replaced only once its execution has answered (Release()). Executions that find the pool empty
// (and browser executions, whose sandbox differs) prepare their own sandbox in line, through the
// same function.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "sandbox/egress_proxy.h"
#include "sandbox/sandbox_runner.h"

namespace toani::server {

// A directory under the run directory that the sandbox user can traverse (mode 0711);
// holds the egress socket and a copy of the CA file; removed with everything in it.
class ExecDir {
 public:
  explicit ExecDir(const std::string& base);
  ~ExecDir();
  ExecDir(const ExecDir&) = delete;
  ExecDir& operator=(const ExecDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct SandboxPrepConfig {
  std::string connector_path;     // host path of toani-connector (or a test program)
  std::string connector_ca_file;  // "" = system roots only
  std::vector<ResolverOverride> resolver_overrides;
  std::string work_dir;  // where the per-sandbox directories are made
  std::chrono::milliseconds wall_timeout{20000};
  std::chrono::milliseconds hello_timeout{10000};
  SandboxRunner* runner = nullptr;
};

// A started sandbox waiting for its one job. Destruction kills the sandbox (and all it
// started), stops the proxy and removes the directory, in that order.
struct PreparedSandbox {
  std::unique_ptr<ExecDir> dir;
  std::unique_ptr<EgressProxy> proxy;       // unbound until the execution binds it
  std::unique_ptr<SandboxProcess> process;  // the connector, blocked reading its job
  std::string public_key;                   // from the connector's hello
  std::string ca_file;                      // sandbox path of the CA copy, or ""
  bool browser = false;
  std::chrono::steady_clock::time_point ready_at;
  ~PreparedSandbox();
};

// Tears used sandboxes down off the request path (docs/connector-protocol.md §6.6). The
// execution SIGKILLs its sandbox (SandboxProcess::SignalKill) before it answers and hands
// it over here; one background thread (nice 19) reaps bwrap, waits until the cgroup is
// empty and removes it, stops the egress proxy and removes the directory. The
// destructor finishes every teardown handed over.
class SandboxReaper {
 public:
  SandboxReaper();
  ~SandboxReaper();
  SandboxReaper(const SandboxReaper&) = delete;
  SandboxReaper& operator=(const SandboxReaper&) = delete;

  // Takes `ps` (already SIGKILLed) for teardown. Thread-safe. With kMaxQueued teardowns
  // already waiting, tears `ps` down in the calling thread instead (back-pressure).
  void Dispose(std::unique_ptr<PreparedSandbox> ps);
  static constexpr size_t kMaxQueued = 16;
  // Waits until everything handed over so far is torn down; false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout) const;

 private:
  void Loop();

  mutable std::mutex mu_;
  mutable std::condition_variable cv_, idle_cv_;
  std::deque<std::unique_ptr<PreparedSandbox>> queue_;
  size_t busy_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// The sandbox a browser execution gets (Chromium needs more memory, processes and
// system calls than the other connectors; docs/connector-protocol.md §6.4).
void ApplyBrowserSandbox(SandboxSpec& spec);

// Starts one sandbox for `cfg` and reads the connector's hello. Must be called from a
// thread that outlives the sandbox (SandboxRunner::Start's PR_SET_PDEATHSIG caveat).
StatusOr<std::unique_ptr<PreparedSandbox>> PrepareSandbox(const SandboxPrepConfig& cfg,
                                                          bool browser);

struct SandboxPoolStats {
  size_t size = 0;            // configured target
  size_t ready = 0;           // waiting now
  uint64_t taken = 0;         // handed to an execution
  uint64_t misses = 0;        // Take() found none ready
  uint64_t started = 0;       // prepared by the pool
  uint64_t failed = 0;        // preparations that failed
  uint64_t discarded = 0;     // dropped unused (too old, or died while waiting)
  bool low_priority = false;  // refill at nice 19 (taken sandboxes get the normal one back)
  std::string last_error;     // of the last failed preparation, "" if none
};

class SandboxPool {
 public:
  using Factory = std::function<StatusOr<std::unique_ptr<PreparedSandbox>>()>;
  // size 0: no thread, Take() always returns nullptr. Sandboxes older than max_idle are
  // replaced (a fresh key and a fresh process for every execution either way).
  // `refill_after`: the latest a taken sandbox is replaced when no Release() comes.
  SandboxPool(size_t size, Factory factory,
              std::chrono::milliseconds max_idle = std::chrono::minutes(10),
              std::chrono::milliseconds refill_after = std::chrono::seconds(1));
  ~SandboxPool();  // stops the thread, kills every sandbox still waiting
  SandboxPool(const SandboxPool&) = delete;
  SandboxPool& operator=(const SandboxPool&) = delete;

  // A ready sandbox, removed from the pool for good, at the server's normal priority;
  // nullptr when none is ready. Call Release() once the execution that took it has
  // answered: the replacement starts then (or `refill_after` after the Take() at the
  // latest). Thread-safe.
  std::unique_ptr<PreparedSandbox> Take();
  void Release();
  SandboxPoolStats Stats() const;
  // Waits until `n` sandboxes are ready (tests, benchmarks); false on timeout.
  bool WaitReady(size_t n, std::chrono::milliseconds timeout) const;

 private:
  void Loop();
  void PublishMetrics() const;  // callers hold mu_

  const size_t size_;
  const Factory factory_;
  const std::chrono::milliseconds max_idle_;
  const std::chrono::milliseconds refill_after_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;        // refill thread: a slot is free / stop
  mutable std::condition_variable ready_cv_;  // WaitReady
  std::deque<std::unique_ptr<PreparedSandbox>> ready_;
  size_t preparing_ = 0;  // being started by a refill thread
  size_t owed_ = 0;       // taken, execution not answered yet (no replacement started)
  std::chrono::steady_clock::time_point last_take_{};
  int normal_nice_ = 0;  // the server's nice value, given back to a taken sandbox
  SandboxPoolStats stats_;
  bool stop_ = false;
  static constexpr size_t kRefillThreads = 2;
  std::vector<std::thread> threads_;
};

}  // namespace toani::server
