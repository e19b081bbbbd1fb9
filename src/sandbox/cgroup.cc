#include "sandbox/cgroup.h"

#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace toani {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteFile(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  if (!out) return Status::Unavailable("cannot write '" + value + "' to " + path);
  return Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

struct Mount {
  std::string root, point, fstype, options;
};

std::vector<Mount> CgroupMounts() {
  std::vector<Mount> out;
  std::istringstream in(ReadFile("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto pre = Split(line.substr(0, dash), ' ');
    const auto post = Split(line.substr(dash + 3), ' ');
    if (pre.size() < 5 || post.size() < 3) continue;
    if (post[0] != "cgroup" && post[0] != "cgroup2") continue;
    out.push_back({pre[3], pre[4], post[0], post[2]});
  }
  return out;
}

// Our own cgroup path in the hierarchy that has `controller` ("" for v2).
std::string OwnPath(const std::string& controller) {
  std::istringstream in(ReadFile("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string ctrls = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (controller.empty() ? (line.substr(0, a) == "0" && ctrls.empty()) : [&] {
          for (const auto& c : Split(ctrls, ','))
            if (c == controller) return true;
          return false;
        }()) {
      return path;
    }
  }
  return "";
}

std::string JoinPath(const Mount& m, const std::string& own) {
  std::string rel = own;
  if (m.root != "/" && rel.rfind(m.root, 0) == 0) rel = rel.substr(m.root.size());
  if (rel == "/") rel.clear();
  return m.point + rel;
}

// Creates `dir` and writes each (file, value); removes it again on failure.
Status MakeWithLimits(const std::string& dir,
                      const std::vector<std::pair<std::string, std::string>>& settings) {
  if (::mkdir(dir.c_str(), 0755) != 0) {
    return Status::Unavailable("mkdir " + dir + ": " + std::strerror(errno));
  }
  for (const auto& [file, value] : settings) {
    Status st = WriteFile(dir + "/" + file, value);
    if (!st.ok()) {
      ::rmdir(dir.c_str());
      return st;
    }
  }
  return Status::Ok();
}

std::atomic<uint64_t> g_counter{0};

// pid and counter, plus 64 random bits: a server killed with SIGKILL leaves its cgroups
// behind, and a later process with the same pid (pids are reused, and a container has its
// own) must not collide with them.
std::string ChildName() {
  uint8_t r[8] = {};
  size_t got = 0;
  while (got < sizeof r) {
    const ssize_t n = ::getrandom(r + got, sizeof r - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (uint8_t b : r) {
    suffix.push_back(kHex[b >> 4]);
    suffix.push_back(kHex[b & 15]);
  }
  return "toani-sbx-" + std::to_string(::getpid()) + "-" + std::to_string(++g_counter) + "-" +
         suffix;
}

}  // namespace

SandboxCgroup::SandboxCgroup(std::vector<std::string> dirs, bool has_kill_file)
    : dirs_(std::move(dirs)), has_kill_file_(has_kill_file) {
  for (const auto& d : dirs_) join_files_.push_back(d + "/cgroup.procs");
}

SandboxCgroup::~SandboxCgroup() {
  (void)KillAll();
  for (const auto& d : dirs_) {
    // A killed task leaves the cgroup a moment after SIGKILL; retry briefly.
    for (int i = 0; i < 200 && ::rmdir(d.c_str()) != 0 && errno == EBUSY; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

std::vector<pid_t> SandboxCgroup::Pids() const {
  std::set<pid_t> pids;
  for (const auto& f : join_files_) {
    std::istringstream in(ReadFile(f));
    long p;
    while (in >> p) pids.insert(static_cast<pid_t>(p));
  }
  return {pids.begin(), pids.end()};
}

Status SandboxCgroup::KillAll() {
  if (has_kill_file_) (void)WriteFile(dirs_.front() + "/cgroup.kill", "1");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (true) {
    const std::vector<pid_t> pids = Pids();
    if (pids.empty()) return Status::Ok();
    // A fork racing with the kill lands in the same cgroup and is caught next round.
    for (pid_t p : pids) ::kill(p, SIGKILL);
    if (std::chrono::steady_clock::now() > until) {
      return Status::Internal("sandbox cgroup still has processes after SIGKILL");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void SandboxCgroup::SignalAll() {
  if (has_kill_file_) (void)WriteFile(dirs_.front() + "/cgroup.kill", "1");
  for (pid_t p : Pids()) ::kill(p, SIGKILL);
}

bool SandboxCgroup::OomKilled() const {
  for (const auto& d : dirs_) {
    for (const char* file : {"/memory.events", "/memory.oom_control"}) {
      std::istringstream in(ReadFile(d + file));
      std::string key;
      long value = 0;
      while (in >> key >> value) {
        if (key == "oom_kill" && value > 0) return true;
      }
    }
  }
  return false;
}

std::unique_ptr<CgroupController> CgroupController::Detect() {
  auto c = std::unique_ptr<CgroupController>(new CgroupController());
  const std::vector<Mount> mounts = CgroupMounts();
  std::string why;
  // v2 first: one hierarchy, cgroup.kill, no stragglers.
  for (const Mount& m : mounts) {
    if (m.fstype != "cgroup2") continue;
    const std::string parent = JoinPath(m, OwnPath(""));
    const std::string ctrls = ReadFile(parent + "/cgroup.controllers");
    if (ctrls.find("memory") == std::string::npos || ctrls.find("pids") == std::string::npos) {
      why +=
          "cgroup v2 at " + m.point + ": memory/pids controllers not delegated to " + parent + "; ";
      continue;
    }
    (void)WriteFile(parent + "/cgroup.subtree_control", "+memory +pids");
    const std::string probe = parent + "/" + ChildName();
    Status st = MakeWithLimits(probe, {{"memory.max", "67108864"}, {"pids.max", "8"}});
    if (!st.ok()) {
      why += "cgroup v2 at " + parent + ": " + st.message() + "; ";
      continue;
    }
    ::rmdir(probe.c_str());
    c->kind_ = Kind::kV2;
    c->v2_parent_ = parent;
    c->description_ = "cgroup v2 (memory and pids below " + parent + ")";
    return c;
  }
  std::string mem, pids;
  for (const Mount& m : mounts) {
    if (m.fstype != "cgroup") continue;
    for (const auto& opt : Split(m.options, ',')) {
      if (opt == "memory" && mem.empty()) mem = JoinPath(m, OwnPath("memory"));
      if (opt == "pids" && pids.empty()) pids = JoinPath(m, OwnPath("pids"));
    }
  }
  if (mem.empty() || pids.empty()) {
    why += "cgroup v1: no memory or pids hierarchy mounted";
  } else {
    const std::string name = ChildName();
    Status a = MakeWithLimits(mem + "/" + name, {{"memory.limit_in_bytes", "67108864"}});
    Status b = MakeWithLimits(pids + "/" + name, {{"pids.max", "8"}});
    ::rmdir((mem + "/" + name).c_str());
    ::rmdir((pids + "/" + name).c_str());
    if (a.ok() && b.ok()) {
      c->kind_ = Kind::kV1;
      c->v1_memory_parent_ = mem;
      c->v1_pids_parent_ = pids;
      c->description_ = "cgroup v1 (memory below " + mem + ", pids below " + pids + ")";
      return c;
    }
    why += "cgroup v1: " + (a.ok() ? b.message() : a.message());
  }
  c->description_ = "no usable cgroups (" + why +
                    "): sandboxes get rlimits only (RLIMIT_AS, RLIMIT_NPROC), no memory or "
                    "pids limit for the sandbox as a whole";
  return c;
}

StatusOr<std::unique_ptr<SandboxCgroup>> CgroupController::Create(const CgroupLimits& limits) {
  const std::string name = ChildName();
  const std::string mem = std::to_string(limits.memory_bytes);
  const std::string pids = std::to_string(limits.max_pids);
  if (kind_ == Kind::kV2) {
    const std::string dir = v2_parent_ + "/" + name;
    TOANI_RETURN_IF_ERROR(MakeWithLimits(dir, {{"memory.max", mem}, {"pids.max", pids}}));
    (void)WriteFile(dir + "/memory.swap.max", "0");  // absent without swap accounting
    return std::make_unique<SandboxCgroup>(std::vector<std::string>{dir},
                                           Exists(dir + "/cgroup.kill"));
  }
  if (kind_ == Kind::kV1) {
    const std::string mdir = v1_memory_parent_ + "/" + name;
    const std::string pdir = v1_pids_parent_ + "/" + name;
    TOANI_RETURN_IF_ERROR(MakeWithLimits(mdir, {{"memory.limit_in_bytes", mem}}));
    if (Exists(mdir + "/memory.memsw.limit_in_bytes")) {
      (void)WriteFile(mdir + "/memory.memsw.limit_in_bytes", mem);  // no escape into swap
    }
    Status st = MakeWithLimits(pdir, {{"pids.max", pids}});
    if (!st.ok()) {
      ::rmdir(mdir.c_str());
      return st;
    }
    return std::make_unique<SandboxCgroup>(std::vector<std::string>{mdir, pdir}, false);
  }
  return Status::Unavailable(description_);
}

}  // namespace toani
