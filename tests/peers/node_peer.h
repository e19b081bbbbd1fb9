// Test helper: runs tests/peers/targets.js (real npm peers on 127.0.0.1, port 0) as a
// child process with a pipe on stdin (closing it stops the peer), reads its ready line,
// and offers plain HTTPS calls to it for the test's own admin requests.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

namespace toani::testing {

class NodePeer {
 public:
  // `config` is written to DIR/peer-SCRIPT.json; TOANI_NODE and TOANI_PEERS_DIR come from CMake.
  // `script` is a file in tests/peers (default: targets.js).
  NodePeer(const std::string& dir, const nlohmann::json& config,
           const std::string& script_name = "targets.js") {
    const std::string cfg_path = dir + "/peer-" + script_name + ".json";
    FILE* f = std::fopen(cfg_path.c_str(), "w");
    if (f == nullptr) return;
    const std::string text = config.dump();
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      const std::string script = std::string(TOANI_PEERS_DIR) + "/" + script_name;
      ::execlp(TOANI_NODE, TOANI_NODE, script.c_str(), cfg_path.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char c;
      if (::read(stdout_, &c, 1) != 1) break;
      if (c == '\n') {
        ready_ = nlohmann::json::parse(line, nullptr, false);
        break;
      }
      line.push_back(c);
    }
  }
  ~NodePeer() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      for (int i = 0; i < 100 && ::waitpid(pid_, &st, WNOHANG) == 0; ++i) ::usleep(50000);
      if (::waitpid(pid_, &st, WNOHANG) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
      }
    }
    if (stdout_ >= 0) ::close(stdout_);
  }
  NodePeer(const NodePeer&) = delete;
  NodePeer& operator=(const NodePeer&) = delete;

  bool ok() const { return ready_.is_object() && ready_.contains("port"); }
  uint16_t port() const { return ready_.value("port", uint16_t{0}); }
  uint16_t oauth_port() const { return ready_.value("oauth_port", uint16_t{0}); }

  // A direct call to the peer (curl on the host, trusting `ca`): for the test's admin
  // requests only, never used by the code under test.
  nlohmann::json Admin(const std::string& ca, const std::string& method, const std::string& path,
                       const nlohmann::json& body = nullptr) const {
    std::string cmd = "curl -s --max-time 20 --cacert '" + ca +
                      "' --resolve admin.toani.test:" + std::to_string(port()) + ":127.0.0.1 -X " +
                      method;
    const std::string tmp = "/tmp/toani-peer-admin-" + std::to_string(::getpid()) + ".json";
    if (!body.is_null()) {
      FILE* f = std::fopen(tmp.c_str(), "w");
      if (f == nullptr) return nullptr;
      const std::string text = body.dump();
      std::fwrite(text.data(), 1, text.size(), f);
      std::fclose(f);
      cmd += " -H 'Content-Type: application/json' --data-binary @" + tmp;
    }
    cmd += " 'https://admin.toani.test:" + std::to_string(port()) + path + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return nullptr;
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    if (!body.is_null()) std::remove(tmp.c_str());
    return nlohmann::json::parse(out, nullptr, false);
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  nlohmann::json ready_;
};

}  // namespace toani::testing
