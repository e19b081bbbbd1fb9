#include "server_harness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace toani::testing {

namespace fs = std::filesystem;

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

ServerHarness::ServerHarness() {
  char tmpl[] = "/tmp/toani-it-XXXXXX";
  root_ = ::mkdtemp(tmpl);
  data_ = root_ + "/data";
  log_ = root_ + "/server.log";
}

ServerHarness::~ServerHarness() {
  Stop();
  std::error_code ec;
  fs::remove_all(root_, ec);
}

std::string ServerHarness::bin(const std::string& name) const {
  // TOANI_TEST_BIN_DIR runs other builds of the binaries (A/B benchmark runs).
  if (const char* dir = std::getenv("TOANI_TEST_BIN_DIR"); dir != nullptr && *dir != '\0')
    return std::string(dir) + "/" + name;
  return std::string(TOANI_BUILD_DIR) + "/bin/" + name;
}

Status ServerHarness::Start() {
  pid_ = ::fork();
  if (pid_ < 0) return Status::Unavailable("fork failed");
  if (pid_ == 0) {
    FILE* log = std::fopen(log_.c_str(), "w");
    if (log != nullptr) {
      ::dup2(fileno(log), 1);
      ::dup2(fileno(log), 2);
    }
    std::string toani = bin("toani");
    std::vector<std::string> args = {toani, "server",   "--dev",      "--data",
                                     data_, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(toani.c_str(), argv.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = nlohmann::json::parse(ReadFileOrEmpty(data_ + "/server.json"), nullptr, false);
    if (!j.is_discarded() && j.contains("address")) {
      address_ = j["address"];
      return Status::Ok();
    }
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable("server exited during start-up:\n" + ReadFileOrEmpty(log_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return Status::Unavailable("server did not start in 60 s:\n" + ReadFileOrEmpty(log_));
}

int ServerHarness::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int st = 0;
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return 137;
}

StatusOr<ClientResponse> ServerHarness::Call(const std::string& who, const std::string& method,
                                             const std::string& path, const std::string& body,
                                             const std::string& content_type) const {
  ClientTls tls{data_ + "/pki/ca.pem", data_ + "/pki/" + who + ".pem",
                data_ + "/pki/" + who + "-key.pem"};
  return HttpsCall(method, address_ + path, body, content_type, tls);
}

StatusOr<nlohmann::json> ServerHarness::CallJson(const std::string& who, const std::string& method,
                                                 const std::string& path,
                                                 const nlohmann::json& body, long* status) const {
  TOANI_ASSIGN_OR_RETURN(ClientResponse r,
                         Call(who, method, path, body.is_null() ? "" : body.dump(),
                              body.is_null() ? "" : "application/json"));
  if (status != nullptr) *status = r.status;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return Status::Internal("response is not JSON: " + r.body);
  return j;
}

}  // namespace toani::testing
