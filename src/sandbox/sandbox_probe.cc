// A deliberately hostile program, run inside the sandbox by sandbox_escape_test. It
// reads one JSON line of targets from stdin, tries to escape or reach each, and prints
// one JSON report line: for every attempt, whether it succeeded and the errno text.
// It must not depend on anything but libc and the JSON header.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
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
  // The sandbox has its own loopback, so sendto() itself succeeds; the test checks that
  // nothing arrives at its host-side UDP socket.
  r["udp_sent_to_host_port"] = TryUdp("127.0.0.1", in.value("udp_port", 0));
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
