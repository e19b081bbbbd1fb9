#include "server/sandbox_pool.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "server/metrics.h"

namespace toani::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kLowNice = 19;

id_t ThisThread() { return static_cast<id_t>(::syscall(SYS_gettid)); }

// The calling thread's nice value (it is per thread on Linux).
int ThreadNice() {
  errno = 0;
  const int n = ::getpriority(PRIO_PROCESS, ThisThread());
  return errno == 0 ? n : 0;
}

// Whether this process may lower a thread's priority to kLowNice and raise it back to
// `normal` (CAP_SYS_NICE, or RLIMIT_NICE allowing `normal`); tried on a scratch thread.
bool CanRaiseNiceBack(int normal) {
  bool ok = false;
  std::thread([&] {
    const id_t t = ThisThread();
    if (::setpriority(PRIO_PROCESS, t, kLowNice) == 0) {
      ok = ::setpriority(PRIO_PROCESS, t, normal) == 0;
    }
  }).join();
  return ok;
}

}  // namespace

SandboxReaper::SandboxReaper() {
  thread_ = std::thread([this] { Loop(); });
}

SandboxReaper::~SandboxReaper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SandboxReaper::Dispose(std::unique_ptr<PreparedSandbox> ps) {
  if (!ps) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() < kMaxQueued) {
      queue_.push_back(std::move(ps));
      ps = nullptr;
    }
  }
  cv_.notify_all();
  // Back-pressure: when the low-priority thread falls this far behind (a saturated
  // machine), the caller tears its sandbox down itself, so dead sandboxes, their pids and
  // cgroups cannot pile up.
  ps.reset();
}

bool SandboxReaper::WaitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return queue_.empty() && busy_ == 0; });
}

void SandboxReaper::Loop() {
  // Teardown is bookkeeping: it may wait for idle CPU (the sandbox is already dead).
  (void)::setpriority(PRIO_PROCESS, ThisThread(), kLowNice);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stop_ and nothing left
    std::unique_ptr<PreparedSandbox> ps = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    ps.reset();  // reap, empty and remove the cgroup, stop the proxy, remove the files
    lock.lock();
    --busy_;
    if (queue_.empty() && busy_ == 0) idle_cv_.notify_all();
  }
}

ExecDir::ExecDir(const std::string& base) {
  std::string tmpl = base + "/exec-XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr) {
    path_ = tmpl;
    ::chmod(path_.c_str(), 0711);
  }
}

ExecDir::~ExecDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

PreparedSandbox::~PreparedSandbox() {
  // The sandbox first (and everything it started), then its way out, then its files.
  process.reset();
  if (proxy) proxy->Stop();
  proxy.reset();
  dir.reset();
}

void ApplyBrowserSandbox(SandboxSpec& spec) {
  spec.seccomp = SeccompProfile::kBrowser;
  if (fs::exists("/etc/fonts")) spec.ro_binds.push_back({"/etc/fonts", "/etc/fonts"});
  spec.memory_bytes = 1536ull << 20;
  spec.max_pids = 512;
  spec.max_processes = 4096;
  spec.address_space_bytes = RLIM_INFINITY;  // V8 reserves large virtual cages
  spec.tmpfs_bytes = 256ull << 20;           // Chromium's profile under /tmp
  spec.wall_timeout += std::chrono::seconds(60);
}

StatusOr<std::unique_ptr<PreparedSandbox>> PrepareSandbox(const SandboxPrepConfig& cfg,
                                                          bool browser) {
  if (cfg.runner == nullptr) return Status::Internal("no sandbox runner");
  auto ps = std::make_unique<PreparedSandbox>();
  ps->browser = browser;
  ps->dir = std::make_unique<ExecDir>(cfg.work_dir);
  if (ps->dir->path().empty()) {
    return Status::Unavailable("cannot create execution directory under " + cfg.work_dir);
  }
  const std::string sock = ps->dir->path() + "/egress.sock";
  // No allow-list yet: the socket exists (bwrap binds it) but refuses connections until
  // the execution binds its action's rules.
  TOANI_ASSIGN_OR_RETURN(ps->proxy, EgressProxy::StartUnbound(sock, cfg.resolver_overrides));
  SandboxSpec spec;
  spec.connector_path = cfg.connector_path;
  spec.egress_socket_host_path = sock;
  spec.wall_timeout = cfg.wall_timeout;
  if (browser) ApplyBrowserSandbox(spec);
  if (!cfg.connector_ca_file.empty()) {
    // The sandbox user cannot read the data directory: hand it a copy.
    std::string ca_copy = ps->dir->path() + "/ca.pem";
    std::error_code ec;
    fs::copy_file(cfg.connector_ca_file, ca_copy, ec);
    if (ec) return Status::Unavailable("cannot stage the connector CA file");
    ::chmod(ca_copy.c_str(), 0644);
    spec.ro_binds.push_back({ca_copy, "/run/toani/ca.pem"});
    ps->ca_file = "/run/toani/ca.pem";
  }
  TOANI_ASSIGN_OR_RETURN(ps->process, cfg.runner->Start(spec));
  auto hello_line = ps->process->ReadLine(cfg.hello_timeout);
  if (!hello_line.ok()) {
    Log(LogLevel::kError, "executor", "connector_start_failed",
        {{"stderr", ps->process->Stderr()}});
    return Status::Unavailable("connector did not start: " + hello_line.status().message());
  }
  auto hello = json::parse(*hello_line, nullptr, false);
  if (hello.is_discarded() || hello.value("type", "") != "hello" || !hello.contains("public_key") ||
      !hello["public_key"].is_string()) {
    return Status::Internal("connector sent a malformed hello");
  }
  ps->public_key = hello["public_key"].get<std::string>();
  ps->ready_at = std::chrono::steady_clock::now();
  return ps;
}

SandboxPool::SandboxPool(size_t size, Factory factory, std::chrono::milliseconds max_idle,
                         std::chrono::milliseconds refill_after)
    : size_(size), factory_(std::move(factory)), max_idle_(max_idle), refill_after_(refill_after) {
  stats_.size = size;
  normal_nice_ = ThreadNice();
  stats_.low_priority = size_ > 0 && normal_nice_ < kLowNice && CanRaiseNiceBack(normal_nice_);
  if (size_ > 0 && !stats_.low_priority) {
    Log(LogLevel::kInfo, "sandbox_pool", "refill_at_normal_priority",
        {{"detail", "no CAP_SYS_NICE or RLIMIT_NICE to give a taken sandbox its priority back"}});
  }
  Metrics& m = Metrics::Global();
  m.Describe("toani_sandbox_pool_size", "gauge", "Configured number of pre-started sandboxes");
  m.Describe("toani_sandbox_pool_ready", "gauge", "Pre-started sandboxes waiting for a job");
  m.Describe("toani_sandbox_pool_taken_total", "counter",
             "Executions that got a pre-started sandbox");
  m.Describe("toani_sandbox_pool_misses_total", "counter",
             "Executions that found the pool empty and started their own sandbox");
  m.Describe("toani_sandbox_pool_failures_total", "counter",
             "Pre-started sandboxes that failed to start");
  {
    std::lock_guard<std::mutex> lock(mu_);
    PublishMetrics();
  }
  // Two refill threads where the pool holds two or more: a sandbox start is ~30 ms of
  // mostly kernel work, and back-to-back executions take sandboxes faster than one
  // thread starts them.
  for (size_t i = 0; i < std::min<size_t>(size_, kRefillThreads); ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

SandboxPool::~SandboxPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  std::deque<std::unique_ptr<PreparedSandbox>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(ready_);
  }
  left.clear();  // killed here
}

void SandboxPool::PublishMetrics() const {
  Metrics& m = Metrics::Global();
  m.Set("toani_sandbox_pool_size", {}, static_cast<double>(size_));
  m.Set("toani_sandbox_pool_ready", {}, static_cast<double>(ready_.size()));
}

std::unique_ptr<PreparedSandbox> SandboxPool::Take() {
  if (size_ == 0) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.misses;
    return nullptr;
  }
  std::vector<std::unique_ptr<PreparedSandbox>> drop;  // destroyed outside the lock
  std::unique_ptr<PreparedSandbox> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    while (!ready_.empty() && out == nullptr) {
      std::unique_ptr<PreparedSandbox> ps = std::move(ready_.front());
      ready_.pop_front();
      if (now - ps->ready_at > max_idle_ || !ps->process->Running()) {
        ++stats_.discarded;
        drop.push_back(std::move(ps));
        continue;
      }
      out = std::move(ps);
    }
    if (out) {
      ++stats_.taken;
      ++owed_;
      last_take_ = now;
      Metrics::Global().Inc("toani_sandbox_pool_taken_total");
    } else {
      ++stats_.misses;
      Metrics::Global().Inc("toani_sandbox_pool_misses_total");
    }
    PublishMetrics();
  }
  cv_.notify_all();
  // It waited at the refill's low priority; its execution runs at the normal one.
  if (out && stats_.low_priority) {
    Status st = out->process->SetNice(normal_nice_);
    if (!st.ok()) {
      Log(LogLevel::kWarn, "sandbox_pool", "renice_failed", {{"error", st.message()}});
      drop.push_back(std::move(out));
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.discarded;
      if (owed_ > 0) --owed_;
      return nullptr;
    }
  }
  return out;
}

void SandboxPool::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (owed_ > 0) --owed_;
  }
  cv_.notify_all();
}

SandboxPoolStats SandboxPool::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SandboxPoolStats s = stats_;
  s.ready = ready_.size();
  return s;
}

bool SandboxPool::WaitReady(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return ready_cv_.wait_for(lock, timeout, [&] { return ready_.size() >= n; });
}

void SandboxPool::Loop() {
  std::chrono::milliseconds backoff(0);
  // Everything this thread starts inherits its nice value.
  if (stats_.low_priority) (void)::setpriority(PRIO_PROCESS, ThisThread(), kLowNice);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    // Replace sandboxes that waited too long (oldest first).
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<PreparedSandbox>> drop;
    while (!ready_.empty() && now - ready_.front()->ready_at > max_idle_) {
      drop.push_back(std::move(ready_.front()));
      ready_.pop_front();
      ++stats_.discarded;
    }
    if (!drop.empty()) {
      PublishMetrics();
      lock.unlock();
      drop.clear();
      lock.lock();
      continue;
    }
    // A taken sandbox is replaced once its execution has answered (Release()), or
    // refill_after_ after the take at the latest.
    if (owed_ > 0 && now - last_take_ >= refill_after_) owed_ = 0;
    if (ready_.size() + owed_ + preparing_ >= size_) {
      auto wait = ready_.empty() ? max_idle_
                                 : std::chrono::duration_cast<std::chrono::milliseconds>(
                                       ready_.front()->ready_at + max_idle_ - now) +
                                       std::chrono::milliseconds(1);
      if (owed_ > 0) {
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                  last_take_ + refill_after_ - now) +
                                  std::chrono::milliseconds(1));
      }
      cv_.wait_for(lock, wait);
      continue;
    }
    if (backoff.count() > 0) {
      cv_.wait_for(lock, backoff, [&] { return stop_; });
      if (stop_) break;
    }
    ++preparing_;
    lock.unlock();
    // This thread lives as long as the pool, so it outlives every sandbox it starts.
    auto ps = factory_();
    lock.lock();
    --preparing_;
    if (!ps.ok()) {
      ++stats_.failed;
      stats_.last_error = ps.status().message();
      Metrics::Global().Inc("toani_sandbox_pool_failures_total");
      backoff = std::min<std::chrono::milliseconds>(
          std::chrono::seconds(30),
          backoff.count() == 0 ? std::chrono::milliseconds(500) : backoff * 2);
      Log(LogLevel::kWarn, "sandbox_pool", "prestart_failed",
          {{"error", ps.status().message()}, {"retry_ms", backoff.count()}});
      continue;
    }
    backoff = std::chrono::milliseconds(0);
    ++stats_.started;
    ready_.push_back(std::move(ps).value());
    PublishMetrics();
    ready_cv_.notify_all();
  }
}

}  // namespace toani::server
