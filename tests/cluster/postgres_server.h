// Starts a real PostgreSQL (Debian's initdb and postgres from /usr/lib/postgresql/<v>/bin)
// in a fresh temporary directory on a free loopback port, as the test's own child
// process, and stops it (SIGINT = fast shutdown, then SIGKILL) when the object goes out
// of scope or Stop() is called.
//
// PostgreSQL refuses to run as root. When the test runs as root (CI, containers), the
// child drops to the unprivileged user nobody (65534:65534) before exec'ing initdb and
// postgres, and the directory is chown'd to it first. docs/operations.md says the same
// for operators.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace toani::testing {

class PostgresServer {
 public:
  PostgresServer() = default;
  ~PostgresServer() { Stop(); }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The directory holding initdb/postgres, or "" if PostgreSQL is not installed.
  static std::string BinDir() {
    glob_t g{};
    std::string out;
    if (::glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &g) == 0 && g.gl_pathc > 0) {
      out = std::filesystem::path(g.gl_pathv[g.gl_pathc - 1]).parent_path().string();
    }
    ::globfree(&g);
    return out;
  }

  // Empty on success, else what went wrong (the test fails with it).
  std::string Start() {
    const std::string bin = BinDir();
    if (bin.empty()) return "PostgreSQL is not installed (scripts/setup.sh installs it)";
    char tmpl[] = "/tmp/toani-pg-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    if (::geteuid() == 0 && ::chown(dir_.c_str(), kNobody, kNobody) != 0) return "chown failed";
    const std::string data = dir_ + "/data";
    int st = Run({bin + "/initdb", "-D", data, "-U", "toani", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C"},
                 /*wait=*/true);
    if (st != 0) return "initdb failed (exit " + std::to_string(st) + "), see " + dir_;
    port_ = FreePort();
    pid_ = Fork({bin + "/postgres", "-D", data, "-p", std::to_string(port_), "-k", dir_, "-c",
                 "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c",
                 "logging_collector=off", "-c", "log_min_messages=warning"});
    if (pid_ < 0) return "fork failed";
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < until) {
      if (PQping(url().c_str()) == PQPING_OK) return "";
      int ws = 0;
      if (::waitpid(pid_, &ws, WNOHANG) == pid_) {
        pid_ = -1;
        return "postgres exited at start";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "postgres did not answer within 60 s";
  }

  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGINT);
      int st = 0;
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (::waitpid(pid_, &st, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > until) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &st, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      pid_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  uint16_t port() const { return port_; }
  std::string url() const {
    return "postgresql://toani@127.0.0.1:" + std::to_string(port_) + "/postgres";
  }

 private:
  static constexpr uid_t kNobody = 65534;

  static pid_t Fork(const std::vector<std::string>& argv) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    if (::geteuid() == 0) {
      // PostgreSQL refuses root: become nobody for good.
      if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)
        _exit(126);
    }
    // Never outlives the test, even one killed by a timeout (set after the uid change,
    // which clears it).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Its log goes to a file beside the data directory, not into the test's output.
    const std::string log =
        std::filesystem::path(argv.size() > 2 ? argv[2] : "/tmp").parent_path().string() +
        "/postgres.log";
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }

  int Run(const std::vector<std::string>& argv, bool) {
    pid_t p = Fork(argv);
    if (p < 0) return -1;
    int st = 0;
    ::waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  }

  static uint16_t FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace toani::testing
