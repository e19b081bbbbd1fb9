// Run in a pre-started sandbox by sandbox_pool_test, in place of the connector. While it
// waits for its job it tries what a hostile connector would: it connects to the egress
// socket (must be refused: the proxy is not bound to any execution yet) and looks for a
// marker in /tmp (must be absent: every sandbox is new) before leaving one. Then it
// writes a hello with a random key, reads one job line {"connect":[{"host","port"}...]},
// asks the egress proxy (SOCKS5 CONNECT) for each target and prints one result line:
// the SOCKS reply code per target (0 = connected, 2 = not allowed) and what it saw
// before its hello, and its nice value while waiting and while running. With
// {"linger": true} in the job it then stays, ignoring SIGTERM/SIGHUP, until killed.
// Only libc and the JSON header.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

using nlohmann::json;

constexpr const char* kEgress = "/run/toani/egress.sock";
constexpr const char* kMarker = "/tmp/toani-pool-marker";

int ConnectEgress() {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, kEgress, sizeof sun.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  return fd;
}

bool ReadExact(int fd, unsigned char* buf, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, buf, n);
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// The SOCKS5 reply code for CONNECT host:port, or a negative errno / -1000 on a
// protocol failure.
json SocksConnect(const std::string& host, int port) {
  const int fd = ConnectEgress();
  if (fd < 0) return {{"error", std::strerror(-fd)}};
  std::string req = {5, 1, 0};
  req += std::string{5, 1, 0, 3, static_cast<char>(host.size())} + host;
  req.push_back(static_cast<char>((port >> 8) & 0xff));
  req.push_back(static_cast<char>(port & 0xff));
  json out;
  unsigned char greet[2], reply[10];
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size()) ||
      !ReadExact(fd, greet, 2) || !ReadExact(fd, reply, 10)) {
    out = {{"error", "socks exchange failed"}};
  } else {
    out = {{"reply", reply[1]}};
  }
  ::close(fd);
  return out;
}

}  // namespace

// Field 19 of /proc/self/stat (getpriority() is not in the connector's seccomp profile).
int OwnNice() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -100;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 19 && rest >> field; ++i) {
    if (i == 19) return std::atoi(field.c_str());
  }
  return -100;
}

int main() {
  json seen;
  // The nice value it was started with (a pool refill's) and, below, the one it runs
  // its job with (the server gives a taken sandbox its normal priority back).
  seen["nice_waiting"] = OwnNice();
  const int pre = ConnectEgress();
  seen["pre_bind_connect"] = pre < 0 ? std::string(std::strerror(-pre)) : "connected";
  if (pre >= 0) ::close(pre);
  seen["marker_existed"] = ::access(kMarker, F_OK) == 0;
  const int m = ::open(kMarker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  seen["marker_written"] = m >= 0;
  if (m >= 0) ::close(m);
  unsigned char key[16] = {};
  const int ur = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (ur < 0 || ::read(ur, key, sizeof key) != static_cast<ssize_t>(sizeof key)) return 3;
  ::close(ur);
  std::string hex;
  for (unsigned char c : key) {
    const char* digits = "0123456789abcdef";
    hex.push_back(digits[c >> 4]);
    hex.push_back(digits[c & 15]);
  }
  std::cout << json{{"type", "hello"}, {"public_key", hex}}.dump() << std::endl;

  std::string line;
  if (!std::getline(std::cin, line)) return 4;
  const json job = json::parse(line, nullptr, false);
  if (job.is_discarded()) return 5;
  seen["nice_running"] = OwnNice();
  json results = json::array();
  for (const json& t : job.value("connect", json::array())) {
    json r = SocksConnect(t.value("host", ""), t.value("port", 0));
    r["host"] = t.value("host", "");
    results.push_back(r);
  }
  std::cout << json{{"type", "result"}, {"seen", seen}, {"results", results}}.dump() << std::endl;
  if (job.value("linger", false)) {
    // A connector that will not go: ignores the polite signals and never exits.
    for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGPIPE}) ::signal(sig, SIG_IGN);
    for (;;) ::pause();
  }
  return 0;
}
