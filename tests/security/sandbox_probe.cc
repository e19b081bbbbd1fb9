// A deliberately hostile program, run inside the sandbox by sandbox_escape_test. It
// reads one JSON line of targets from stdin. In mode "escape" (default) it tries to
// escape or reach each target and prints one JSON report line: for every attempt,
// whether it succeeded and the errno text. The other modes abuse resources: "forkbomb",
// "alloc" (touch alloc_mb MiB), "spin" (burn CPU forever), "daemon" (leave a detached
// grandchild behind and exit). It must not depend on anything but libc and the JSON
// header.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

extern char** environ;

namespace {

using nlohmann::json;

json Attempt(bool succeeded) {
  return {{"succeeded", succeeded}, {"error", succeeded ? "" : std::strerror(errno)}};
}

json TryOpenRead(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Attempt(false);
  char c;
  const bool ok = ::read(fd, &c, 1) >= 0;
  ::close(fd);
  return Attempt(ok);
}

json TryListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return Attempt(false);
  ::closedir(d);
  return Attempt(true);
}

json TryCreate(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Attempt(false);
  const bool ok = ::write(fd, "x", 1) == 1;
  ::close(fd);
  return Attempt(ok);
}

json TryTcp(const char* ip, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Attempt(false);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return Attempt(ok);
}

json TryUdp(const char* ip, int port) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Attempt(false);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip, &a.sin_addr);
  const bool ok = ::sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof a) == 1;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return Attempt(ok);
}

json TryAbstractUnix(const std::string& name) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Attempt(false);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), std::min(name.size(), sizeof a.sun_path - 2));
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), len) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return Attempt(ok);
}

std::string StatusField(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

json ProcPids() {
  json pids = json::array();
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      if (std::strspn(e->d_name, "0123456789") == std::strlen(e->d_name)) pids.push_back(e->d_name);
    }
    ::closedir(d);
  }
  return pids;
}

json OpenFds() {
  json fds = json::array();
  if (DIR* d = ::opendir("/proc/self/fd")) {
    const int self = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
      fds.push_back(std::atoi(e->d_name));
    }
    ::closedir(d);
  }
  return fds;
}

json TrySocket(int domain, int type, int protocol = 0) {
  const int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd >= 0) ::close(fd);
  return Attempt(fd >= 0);
}

// Reads every other process's environment it can see; "succeeded" if any yields bytes.
json TryOtherEnvirons() {
  bool any = false;
  json seen = json::array();
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (std::atoi(name.c_str()) == ::getpid()) continue;
      const int fd = ::open(("/proc/" + name + "/environ").c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      ::close(fd);
      if (n > 0) {
        any = true;
        seen.push_back(std::string(buf, static_cast<size_t>(n)));
      }
    }
    ::closedir(d);
  }
  errno = EACCES;
  json r = Attempt(any);
  r["contents"] = seen;
  return r;
}

json TryAlloc(size_t mib) {
  auto* p = static_cast<char*>(std::malloc(mib << 20));
  if (p == nullptr) return Attempt(false);
  for (size_t i = 0; i < (mib << 20); i += 4096) p[i] = 1;  // make it resident
  std::free(p);
  return Attempt(true);
}

[[noreturn]] void ForkBomb() {
  int forked = 0;
  int err = 0;
  while (forked < 100000) {
    const pid_t p = ::fork();
    if (p == 0) {
      ::pause();
      _exit(0);
    }
    if (p < 0) {
      err = errno;
      break;
    }
    ++forked;
  }
  std::cout << json{{"forked", forked}, {"error", std::strerror(err)}}.dump() << "\n" << std::flush;
  while (true) ::pause();
}

[[noreturn]] void Daemonize() {
  const pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    ::signal(SIGHUP, SIG_IGN);
    if (::fork() == 0) {
      while (true) ::pause();  // the straggler: detached, no parent, own session
    }
    _exit(0);
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  std::cout << json{{"daemonized", child > 0}}.dump() << "\n" << std::flush;
  _exit(0);
}

}  // namespace

int main() {
  std::string line;
  if (!std::getline(std::cin, line)) return 3;
  const json in = json::parse(line, nullptr, false);
  if (in.is_discarded()) return 3;
  const int tcp_port = in.value("tcp_port", 0);
  const int host_pid = in.value("host_pid", 0);
  const std::string host_file = in.value("host_file", "");
  const std::string host_dir = in.value("host_dir", "");
  const std::string abstract_name = in.value("abstract_name", "");
  const std::string mode = in.value("mode", "escape");
  if (mode == "forkbomb") ForkBomb();
  if (mode == "daemon") Daemonize();
  if (mode == "spin") {
    volatile uint64_t x = 0;
    while (true) x = x + 1;
  }
  if (mode == "alloc") {
    const json a = TryAlloc(in.value("alloc_mb", size_t{2048}));
    std::cout << a.dump() << "\n" << std::flush;
    return 0;
  }

  json r;
  r["uid"] = ::getuid();
  r["euid"] = ::geteuid();
  r["gid"] = ::getgid();
  r["cap_eff"] = StatusField("CapEff");
  r["cap_prm"] = StatusField("CapPrm");
  r["cap_bnd"] = StatusField("CapBnd");
  r["no_new_privs"] = StatusField("NoNewPrivs");
  r["env_names"] = [] {
    json names = json::array();
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string kv = *e;
      names.push_back(kv.substr(0, kv.find('=')));
    }
    return names;
  }();
  r["open_fds"] = OpenFds();
  r["proc_pids"] = ProcPids();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  r["hostname"] = host;

  json& a = r["attempts"];
  a["read_etc_shadow"] = TryOpenRead("/etc/shadow");
  a["read_etc_passwd"] = TryOpenRead("/etc/passwd");
  a["list_root_home"] = TryListDir("/root");
  a["list_work"] = TryListDir("/work");
  a["read_host_file"] = TryOpenRead(host_file);
  a["list_host_dir"] = TryListDir(host_dir);
  a["create_in_root"] = TryCreate("/escape-probe");
  a["create_in_run_toani"] = TryCreate("/run/toani/escape-probe");
  a["create_in_usr"] = TryCreate("/usr/escape-probe");
  a["create_in_etc_ssl"] = TryCreate("/etc/ssl/certs/escape-probe");
  a["overwrite_self"] = [] {
    const int fd = ::open("/run/toani/connector", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
    return Attempt(fd >= 0);
  }();
  a["tcp_loopback_listener"] = TryTcp("127.0.0.1", tcp_port);
  a["tcp_other_loopback"] = TryTcp("127.0.0.2", tcp_port);
  // Even if an IP socket could be made, the sandbox has only its own loopback; the test
  // also checks that nothing arrives at its host-side UDP socket.
  a["udp_send_loopback"] = TryUdp("127.0.0.1", in.value("udp_port", 0));
  a["tcp_socket"] = TrySocket(AF_INET, SOCK_STREAM);
  a["udp_socket"] = TrySocket(AF_INET, SOCK_DGRAM);
  a["tcp6_socket"] = TrySocket(AF_INET6, SOCK_STREAM);
  a["raw_socket"] = TrySocket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  a["netlink_socket"] = TrySocket(AF_NETLINK, SOCK_RAW, 0);
  a["packet_socket"] = TrySocket(AF_PACKET, SOCK_RAW, 0);
  a["read_data_dir"] = TryOpenRead(in.value("data_file", ""));
  a["list_data_dir"] = TryListDir(in.value("data_dir", ""));
  a["read_other_environ"] = TryOtherEnvirons();
  a["read_host_pid_environ"] = TryOpenRead("/proc/" + std::to_string(host_pid) + "/environ");
  a["ptrace_traceme"] = Attempt(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0);
  a["ptrace_attach_pid1"] = Attempt(::ptrace(PTRACE_ATTACH, 1, nullptr, nullptr) == 0);
  a["unshare_net"] = Attempt(::unshare(CLONE_NEWNET) == 0);
  a["unshare_mount"] = Attempt(::unshare(CLONE_NEWNS) == 0);
  a["clone_new_pid_ns"] = [] {
    const long c = ::syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, 0);
    if (c == 0) _exit(0);
    if (c > 0) ::waitpid(static_cast<pid_t>(c), nullptr, 0);
    return Attempt(c > 0);
  }();
  a["setns"] = [] {
    const int fd = ::open("/proc/1/ns/net", O_RDONLY | O_CLOEXEC);
    const bool ok = fd >= 0 && ::setns(fd, 0) == 0;
    if (fd >= 0) ::close(fd);
    return Attempt(ok);
  }();
  a["io_uring_setup"] = [] {
    io_uring_params p{};
    const long fd = ::syscall(SYS_io_uring_setup, 4, &p);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return Attempt(fd >= 0);
  }();
  a["bpf"] = [] {
    uint8_t attr[128] = {};
    const long fd = ::syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return Attempt(fd >= 0);
  }();
  a["userfaultfd"] = [] {
    const long fd = ::syscall(SYS_userfaultfd, O_CLOEXEC);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return Attempt(fd >= 0);
  }();
  a["keyctl_add_key"] = Attempt(::syscall(SYS_add_key, "user", "toani", "x", 1, -2) >= 0);
  a["perf_event_open"] = [] {
    uint8_t attr[128] = {};
    const long fd = ::syscall(SYS_perf_event_open, attr, 0, -1, -1, 0);
    if (fd >= 0) ::close(static_cast<int>(fd));
    return Attempt(fd >= 0);
  }();
  a["fork"] = [] {
    const pid_t p = ::fork();
    if (p == 0) _exit(0);
    if (p > 0) ::waitpid(p, nullptr, 0);
    return Attempt(p > 0);
  }();
  a["alloc_2gb"] = TryAlloc(2048);
  a["setuid_nobody_to_root_via_setresuid"] = Attempt(::setresuid(0, 0, 0) == 0);
  a["abstract_unix_socket"] = TryAbstractUnix(abstract_name);
  a["signal_host_pid"] = Attempt(host_pid > 0 && ::kill(host_pid, 0) == 0);
  a["see_host_pid_in_proc"] = [&] {
    struct stat st {};
    return Attempt(::stat(("/proc/" + std::to_string(host_pid)).c_str(), &st) == 0);
  }();
  a["setuid_root"] = Attempt(::setuid(0) == 0);
  a["mount_tmpfs"] = Attempt(::mount("none", "/tmp", "tmpfs", 0, nullptr) == 0);
  a["new_user_namespace"] = Attempt(::unshare(CLONE_NEWUSER) == 0);
  a["chroot"] = Attempt(::chroot("/tmp") == 0);
  // Sanity: the one place the connector may write.
  a["create_in_tmp"] = TryCreate("/tmp/probe-ok");

  std::cout << r.dump() << "\n" << std::flush;
  return 0;
}
