#include "keyd/client.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "keyd/protocol.h"

namespace toani::keyd {

StatusOr<std::unique_ptr<KeydProcess>> KeydProcess::Spawn(const std::string& keyd_path, const std::string& state_dir) {
  if (::access(keyd_path.c_str(), X_OK) != 0) return Status::Unavailable("keyd: executable not found: " + keyd_path);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Status::Unavailable("keyd: socketpair failed");
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(sv[0]);
    ::close(sv[1]);
    return Status::Unavailable("keyd: fork failed");
  }
  if (pid == 0) {
    // Child: fd 3 is the socket; everything else is close-on-exec.
    if (::dup2(sv[1], 3) < 0) ::_exit(127);
    const char* argv[] = {keyd_path.c_str(), "--dev", "--state-dir", state_dir.c_str(), "--fd", "3", nullptr};
    const char* envp[] = {nullptr};  // keyd gets no environment at all
    ::execve(keyd_path.c_str(), const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    ::_exit(127);
  }
  ::close(sv[1]);
  std::unique_ptr<KeydProcess> p(new KeydProcess(sv[0], pid));
  auto st = p->Call({{"op", "status"}});
  if (!st.ok()) return Status::Unavailable("keyd: did not start: " + st.status().message());
  return p;
}

KeydProcess::~KeydProcess() {
  ::close(fd_);  // keyd exits on EOF
  for (int i = 0; i < 50; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

StatusOr<nlohmann::json> KeydProcess::Call(const nlohmann::json& request) {
  std::lock_guard<std::mutex> lock(mu_);
  TOANI_RETURN_IF_ERROR(WriteFrame(fd_, request));
  auto reply = ReadFrame(fd_);
  if (!reply.ok()) return Status::Unavailable("keyd: " + reply.status().message());
  TOANI_RETURN_IF_ERROR(ReplyStatus(*reply));
  return reply;
}

}  // namespace toani::keyd
