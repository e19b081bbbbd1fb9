// SandboxRunner on top of bubblewrap: fork, join the sandbox's cgroups, set rlimits,
// drop root, hand bwrap the seccomp program on fd 3, exec bwrap.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox_runner.h"

namespace toani {

SandboxProcess::~SandboxProcess() = default;
SandboxRunner::~SandboxRunner() = default;

namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

Status Errno(std::string_view what) {
  return Status::Internal(std::string(what) + ": " + std::strerror(errno));
}

void SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Everything the child needs, prepared before fork (the child may not allocate).
struct ChildPlan {
  pid_t parent;
  int in_fd, out_fd, err_fd;
  int seccomp_fd;                 // -1: no filter
  std::vector<const char*> join;  // cgroup.procs files to write "0" to
  bool drop;
  rlim_t cpu_seconds;
  char* const* argv;
};

// Child side, between fork and exec: only async-signal-safe calls, no allocation.
[[noreturn]] void ExecChild(const ChildPlan& plan, const SandboxSpec& spec,
                            const BwrapOptions& options) {
  ::setpgid(0, 0);  // Kill() signals the whole group
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != plan.parent) _exit(125);
  // Join the sandbox's cgroups first: everything bwrap starts is then inside them.
  for (const char* file : plan.join) {
    const int fd = ::open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(125);
    ::close(fd);
  }
  // Move the seccomp program out of the way of 0-2 first, then to kSeccompFd.
  int seccomp_fd = plan.seccomp_fd;
  if (seccomp_fd >= 0 && seccomp_fd <= kSeccompFd) {
    seccomp_fd = ::fcntl(seccomp_fd, F_DUPFD_CLOEXEC, 10);
    if (seccomp_fd < 0) _exit(125);
  }
  const int fds[3] = {plan.in_fd, plan.out_fd, plan.err_fd};
  for (int target = 0; target < 3; ++target) {
    if (fds[target] == target) {
      ::fcntl(target, F_SETFD, 0);  // keep across exec
    } else if (::dup2(fds[target], target) < 0) {
      _exit(125);
    }
  }
  unsigned first_to_close = 3;
  if (seccomp_fd >= 0) {
    if (::dup2(seccomp_fd, kSeccompFd) < 0) _exit(125);  // dup2 clears FD_CLOEXEC
    first_to_close = kSeccompFd + 1;
  }
  if (::syscall(SYS_close_range, first_to_close, ~0U, 0U) != 0) {
    for (int fd = static_cast<int>(first_to_close); fd < 65536; ++fd) ::close(fd);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  const auto limit = [](int resource, rlim_t value) {
    const rlimit rl{value, value};
    if (::setrlimit(resource, &rl) != 0) _exit(125);
  };
  limit(RLIMIT_CORE, 0);
  limit(RLIMIT_AS, spec.address_space_bytes);
  limit(RLIMIT_NPROC, spec.max_processes);
  limit(RLIMIT_CPU, plan.cpu_seconds);
  limit(RLIMIT_NOFILE, 256);
  limit(RLIMIT_FSIZE, spec.tmpfs_bytes);
  if (plan.drop) {
    // Raw syscalls: they affect only this (the only) thread, no glibc setxid dance.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
        ::syscall(SYS_setresgid, options.host_gid, options.host_gid, options.host_gid) != 0 ||
        ::syscall(SYS_setresuid, options.host_uid, options.host_uid, options.host_uid) != 0) {
      _exit(125);
    }
  }
  char* const empty_env[] = {nullptr};
  ::execve(plan.argv[0], plan.argv, empty_env);
  _exit(127);
}

class BwrapProcess final : public SandboxProcess {
 public:
  BwrapProcess(pid_t pid, Fd pidfd, Fd in, Fd out, Fd err, const SandboxSpec& spec,
               std::unique_ptr<SandboxCgroup> cgroup)
      : cgroup_(std::move(cgroup)),
        pid_(pid),
        pidfd_(std::move(pidfd)),
        in_(std::move(in)),
        out_(std::move(out)),
        err_(std::move(err)),
        deadline_(Clock::now() + spec.wall_timeout),
        max_line_(spec.max_line_bytes),
        max_stderr_(spec.max_stderr_bytes) {}

  ~BwrapProcess() override {
    if (!reaped_) {
      (void)Kill();
      Reap(/*block=*/true);
    }
    // cgroup_'s destructor then kills anything left inside and removes it.
  }

  Status WriteLine(std::string_view line) override {
    if (line.find('\n') != line.npos) return Status::InvalidArgument("line contains '\\n'");
    std::string data(line);
    data.push_back('\n');
    std::string_view rest = data;
    while (!rest.empty()) {
      const ssize_t n = ::send(in_.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n > 0) {
        rest.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return Status::Unavailable(std::string("sandbox stdin closed: ") + std::strerror(errno));
      }
      TOANI_RETURN_IF_ERROR(Pump(deadline_, /*want_write=*/true));
    }
    return Status::Ok();
  }

  StatusOr<std::string> ReadLine(std::chrono::milliseconds timeout) override {
    const Clock::time_point until = std::min(deadline_, Clock::now() + timeout);
    while (true) {
      const size_t nl = out_buf_.find('\n');
      if (nl != std::string::npos) {
        if (nl > max_line_) return Status::Unavailable("sandbox stdout line too long");
        std::string line = out_buf_.substr(0, nl);
        out_buf_.erase(0, nl + 1);
        return line;
      }
      if (out_buf_.size() > max_line_) return Status::Unavailable("sandbox stdout line too long");
      if (out_eof_) return Status::Unavailable("sandbox closed stdout");
      TOANI_RETURN_IF_ERROR(Pump(until, /*want_write=*/false));
    }
  }

  Status Kill() override {
    if (reaped_) return Status::Ok();
    if (::kill(-pid_, SIGKILL) != 0 && ::kill(pid_, SIGKILL) != 0 && errno != ESRCH) {
      return Errno("kill");
    }
    // Whatever left the process group (setsid, double fork) is still in the cgroup.
    if (cgroup_) return cgroup_->KillAll();
    return Status::Ok();
  }

  void SignalKill() override {
    if (reaped_) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    if (cgroup_) cgroup_->SignalAll();
  }

  Status SetNice(int nice) override {
    std::vector<pid_t> pids = HostPids();
    if (!cgroup_ && !reaped_) {
      // No cgroup to list the sandbox: bwrap and everything below it, through
      // /proc/<pid>/task/<tid>/children.
      pids = {pid_};
      for (size_t i = 0; i < pids.size() && pids.size() < 4096; ++i) {
        const std::string task_dir = "/proc/" + std::to_string(pids[i]) + "/task";
        DIR* d = ::opendir(task_dir.c_str());
        if (d == nullptr) continue;
        while (dirent* e = ::readdir(d)) {
          if (e->d_name[0] == '.') continue;
          std::ifstream in(task_dir + "/" + e->d_name + "/children");
          for (long c; in >> c;) pids.push_back(static_cast<pid_t>(c));
        }
        ::closedir(d);
      }
    }
    if (std::find(pids.begin(), pids.end(), pid_) == pids.end() && !reaped_) pids.push_back(pid_);
    for (pid_t p : pids) {
      // Each thread has its own nice value: every task of the process.
      std::vector<pid_t> tids;
      if (DIR* d = ::opendir(("/proc/" + std::to_string(p) + "/task").c_str())) {
        while (dirent* e = ::readdir(d)) {
          const long t = std::atol(e->d_name);
          if (t > 0) tids.push_back(static_cast<pid_t>(t));
        }
        ::closedir(d);
      }
      if (tids.empty()) tids.push_back(p);
      for (pid_t t : tids) {
        if (::setpriority(PRIO_PROCESS, static_cast<id_t>(t), nice) != 0 && errno != ESRCH) {
          if (errno == EACCES || errno == EPERM) {
            return Status::PermissionDenied(std::string("setpriority: ") + std::strerror(errno));
          }
          return Errno("setpriority");
        }
      }
    }
    return Status::Ok();
  }

  StatusOr<int> Wait() override {
    while (!reaped_) {
      if (Reap(/*block=*/false)) break;
      if (Clock::now() >= deadline_) {
        (void)Kill();
        Reap(/*block=*/true);
        return Status::Unavailable("sandbox killed: wall timeout exceeded");
      }
      // pidfd becomes readable at exit; keep draining stdout/stderr meanwhile.
      Status st = Pump(deadline_, /*want_write=*/false, /*until_any_event=*/true);
      (void)st;
    }
    // bwrap is gone; nothing it started may outlive it.
    if (cgroup_) (void)cgroup_->KillAll();
    if (WIFEXITED(wstatus_)) return WEXITSTATUS(wstatus_);
    if (WIFSIGNALED(wstatus_)) return 128 + WTERMSIG(wstatus_);
    return Status::Internal("unexpected wait status");
  }

  void RestartDeadline(std::chrono::milliseconds wall_timeout) override {
    deadline_ = Clock::now() + wall_timeout;
  }
  bool Running() override { return !Reap(/*block=*/false); }

  // Scrubbed of credential-shaped strings before anyone (logs, operators) sees it; the
  // raw bytes never leave this object.
  std::string Stderr() const override { return ScrubCredentialShapes(err_buf_); }
  pid_t pid() const override { return pid_; }
  std::vector<pid_t> HostPids() const override {
    if (!cgroup_) return reaped_ ? std::vector<pid_t>{} : std::vector<pid_t>{pid_};
    return cgroup_->Pids();
  }
  bool OomKilled() const override { return cgroup_ && cgroup_->OomKilled(); }

 private:
  bool Reap(bool block) {
    if (reaped_) return true;
    int ws = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &ws, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
      reaped_ = true;
      wstatus_ = ws;
    }
    return reaped_;
  }

  // Waits for one round of I/O (or until `until`), reading whatever stdout/stderr has.
  // Unavailable when `until` has passed.
  Status Pump(Clock::time_point until, bool want_write, bool until_any_event = false) {
    pollfd p[4];
    nfds_t n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (!out_eof_ && out_buf_.size() <= max_line_) {
      out_i = static_cast<int>(n);
      p[n++] = {out_.get(), POLLIN, 0};
    }
    if (!err_eof_) {
      err_i = static_cast<int>(n);
      p[n++] = {err_.get(), POLLIN, 0};
    }
    if (want_write) {
      in_i = static_cast<int>(n);
      p[n++] = {in_.get(), POLLOUT, 0};
    }
    if (until_any_event) {
      if (pidfd_.get() >= 0) {
        p[n++] = {pidfd_.get(), POLLIN, 0};
      } else {
        until = std::min(until, Clock::now() + std::chrono::milliseconds(20));
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) {
      return Status::Unavailable(until >= deadline_ ? "sandbox wall timeout exceeded"
                                                    : "timed out waiting for the sandbox");
    }
    int r = ::poll(p, n, static_cast<int>(std::min<int64_t>(left.count() + 1, 60000)));
    if (r < 0 && errno != EINTR) return Errno("poll");
    if (r <= 0) return Status::Ok();  // the caller re-checks its deadline
    if (out_i >= 0 && p[out_i].revents != 0) {
      Drain(out_.get(), out_buf_, max_line_ + 1, /*drop_excess=*/false, out_eof_);
    }
    if (err_i >= 0 && p[err_i].revents != 0) {
      Drain(err_.get(), err_buf_, max_stderr_, /*drop_excess=*/true, err_eof_);
    }
    if (in_i >= 0 && (p[in_i].revents & (POLLERR | POLLHUP)) != 0) {
      return Status::Unavailable("sandbox stdin closed");
    }
    return Status::Ok();
  }

  // Reads what is available. Once `buf` holds `cap` bytes: with drop_excess, reads and
  // discards the rest (stderr must never block the sandbox); without, stops reading.
  static void Drain(int fd, std::string& buf, size_t cap, bool drop_excess, bool& eof) {
    char chunk[16384];
    while (drop_excess || buf.size() < cap) {
      const ssize_t r = ::read(fd, chunk, sizeof chunk);
      if (r > 0) {
        const size_t keep = std::min(static_cast<size_t>(r), cap - std::min(cap, buf.size()));
        buf.append(chunk, keep);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;
      return;
    }
  }

  std::unique_ptr<SandboxCgroup> cgroup_;  // destroyed last: kills stragglers, rmdir
  const pid_t pid_;
  Fd pidfd_, in_, out_, err_;
  Clock::time_point deadline_;
  const size_t max_line_, max_stderr_;
  std::string out_buf_, err_buf_;
  bool out_eof_ = false, err_eof_ = false;
  bool reaped_ = false;
  int wstatus_ = 0;
};

class BwrapRunner final : public SandboxRunner {
 public:
  explicit BwrapRunner(BwrapOptions options) : options_(std::move(options)) {
    if (options_.use_cgroups) {
      cgroups_ = CgroupController::Detect();
      // Said once, at start-up, so an operator knows which limits hold.
      if (cgroups_->kind() == CgroupController::Kind::kNone) {
        Log(LogLevel::kWarn, "sandbox", "cgroups_unavailable", {{"detail", cgroups_->Describe()}});
      } else {
        Log(LogLevel::kInfo, "sandbox", "cgroups", {{"detail", cgroups_->Describe()}});
      }
    } else {
      Log(LogLevel::kWarn, "sandbox", "cgroups_disabled",
          {{"detail", "BwrapOptions.use_cgroups is false: rlimits only"}});
    }
  }

  // The seccomp program for `profile`, compiled once per runner.
  StatusOr<std::vector<uint8_t>> Bpf(SeccompProfile profile) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = bpf_.find(profile);
    if (it != bpf_.end()) return it->second;
    TOANI_ASSIGN_OR_RETURN(std::vector<uint8_t> prog, MakeSandboxPolicy(profile).BuildBpf());
    bpf_[profile] = prog;
    return prog;
  }

  StatusOr<std::unique_ptr<SandboxProcess>> Start(const SandboxSpec& spec) override {
    TOANI_ASSIGN_OR_RETURN(std::vector<std::string> args, BuildBwrapArgv(options_, spec));
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    const bool drop = options_.drop_root && ::geteuid() == 0;
    const auto wall_s = (spec.wall_timeout.count() + 999) / 1000;
    const auto cpu_seconds =
        static_cast<rlim_t>(spec.cpu_seconds != 0 ? spec.cpu_seconds : wall_s + 1);

    // The seccomp program travels in a sealed-size memfd that bwrap reads at start.
    Fd seccomp_fd;
    if (spec.seccomp != SeccompProfile::kNone) {
      TOANI_ASSIGN_OR_RETURN(std::vector<uint8_t> prog, Bpf(spec.seccomp));
      seccomp_fd = Fd(::memfd_create("toani-seccomp", MFD_CLOEXEC));
      if (seccomp_fd.get() < 0) return Errno("memfd_create");
      if (::write(seccomp_fd.get(), prog.data(), prog.size()) !=
              static_cast<ssize_t>(prog.size()) ||
          ::lseek(seccomp_fd.get(), 0, SEEK_SET) != 0) {
        return Errno("writing the seccomp program");
      }
    }
    // A cgroup promised by detection but not creatable now: refuse rather than run
    // without the limits (fail closed).
    std::unique_ptr<SandboxCgroup> cgroup;
    if (cgroups_ && cgroups_->kind() != CgroupController::Kind::kNone) {
      TOANI_ASSIGN_OR_RETURN(cgroup, cgroups_->Create({spec.memory_bytes, spec.max_pids}));
    }

    int in[2], out[2], err[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return Errno("socketpair");
    Fd in_parent(in[0]), in_child(in[1]);
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out) != 0) return Errno("socketpair");
    Fd out_parent(out[0]), out_child(out[1]);
    if (::pipe2(err, O_CLOEXEC) != 0) return Errno("pipe2");
    Fd err_parent(err[0]), err_child(err[1]);
    // One direction each: the sandbox cannot read its stdout back or write into stdin.
    ::shutdown(in_parent.get(), SHUT_RD);
    ::shutdown(out_parent.get(), SHUT_WR);

    ChildPlan plan{::getpid(), in_child.get(), out_child.get(), err_child.get(), seccomp_fd.get(),
                   {},         drop,           cpu_seconds,     argv.data()};
    if (cgroup) {
      for (const std::string& f : cgroup->join_files()) plan.join.push_back(f.c_str());
    }
    const pid_t pid = ::fork();
    if (pid < 0) return Errno("fork");
    if (pid == 0) ExecChild(plan, spec, options_);
    ::setpgid(pid, pid);  // also done in the child; whichever runs first wins
    in_child.Reset();
    out_child.Reset();
    err_child.Reset();
    SetNonBlocking(in_parent.get());
    SetNonBlocking(out_parent.get());
    SetNonBlocking(err_parent.get());
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));  // -1 on old kernels
    return std::unique_ptr<SandboxProcess>(std::make_unique<BwrapProcess>(
        pid, std::move(pidfd), std::move(in_parent), std::move(out_parent), std::move(err_parent),
        spec, std::move(cgroup)));
  }

 private:
  const BwrapOptions options_;
  std::unique_ptr<CgroupController> cgroups_;
  std::mutex mu_;  // guards bpf_
  std::map<SeccompProfile, std::vector<uint8_t>> bpf_;
};

}  // namespace

std::unique_ptr<SandboxRunner> MakeBwrapRunner(BwrapOptions options) {
  return std::make_unique<BwrapRunner>(std::move(options));
}

std::unique_ptr<SandboxRunner> MakeBwrapRunner(std::string bwrap_path) {
  BwrapOptions options;
  options.bwrap_path = std::move(bwrap_path);
  return MakeBwrapRunner(std::move(options));
}

}  // namespace toani
