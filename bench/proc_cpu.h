// CPU time a process has used so far (user + system, from /proc/PID/stat), for the
// benchmarks that print CPU per operation beside their rates (docs/performance.md).
#pragma once

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace toani::bench {

// Milliseconds of CPU `pid` has used; 0 if it cannot be read.
inline double ProcessCpuMs(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  // After "(comm) ": state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
  }
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Context switches (voluntary + involuntary) of every thread of `pid` so far, from
// /proc/PID/task/*/status: each one is a thread going to sleep or being preempted, which
// costs far more on a VM than on bare metal. Threads that have exited are not counted.
inline double ProcessContextSwitches(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  double total = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name + "/status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::strtod(line.c_str() + line.find(':') + 1, nullptr);
      }
    }
  }
  ::closedir(d);
  return total;
}

// The machine's CPU time counters (/proc/stat, first line), to report how much of a run
// the hypervisor took away (steal): a benchmark's rates mean little on a VM whose host
// is busy, so the figures are printed beside it.
struct MachineCpu {
  double busy = 0, idle = 0, steal = 0;  // clock ticks summed over all CPUs
};
inline MachineCpu ReadMachineCpu() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // user nice system idle iowait irq softirq steal
  f >> cpu;
  for (double& x : v) f >> x;
  MachineCpu m;
  m.busy = v[0] + v[1] + v[2] + v[5] + v[6];
  m.idle = v[3] + v[4];
  m.steal = v[7];
  return m;
}
// Percent of all CPU time between `a` and `b` that was stolen.
inline double StealPercent(const MachineCpu& a, const MachineCpu& b) {
  const double total = (b.busy - a.busy) + (b.idle - a.idle) + (b.steal - a.steal);
  return total > 0 ? 100.0 * (b.steal - a.steal) / total : 0;
}

}  // namespace toani::bench
