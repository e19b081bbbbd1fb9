#include "keyd/client.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "keyd/protocol.h"

namespace toani::keyd {

StatusOr<std::unique_ptr<KeydProcess>> KeydProcess::Spawn(const std::string& keyd_path,
                                                          const std::string& state_dir, bool dev) {
  std::unique_ptr<KeydProcess> p(new KeydProcess(keyd_path, state_dir, dev));
  std::lock_guard<std::mutex> lock(p->mu_);
  TOANI_RETURN_IF_ERROR(p->StartLocked());
  return p;
}

Status KeydProcess::StartLocked() {
  last_start_ = std::chrono::steady_clock::now();
  if (::access(path_.c_str(), X_OK) != 0)
    return Status::Unavailable("keyd: executable not found: " + path_);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Status::Unavailable("keyd: socketpair failed");
  }
  std::vector<const char*> argv = {path_.c_str()};
  if (dev_) argv.push_back("--dev");
  for (const char* a : {"--state-dir", state_dir_.c_str(), "--fd", "3"}) argv.push_back(a);
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(sv[0]);
    ::close(sv[1]);
    return Status::Unavailable("keyd: fork failed");
  }
  if (pid == 0) {
    // Child: fd 3 is the socket; everything else is close-on-exec.
    if (::dup2(sv[1], 3) < 0) ::_exit(127);
    const char* envp[] = {nullptr};  // keyd gets no environment at all
    ::execve(path_.c_str(), const_cast<char* const*>(argv.data()), const_cast<char* const*>(envp));
    ::_exit(127);
  }
  ::close(sv[1]);
  fd_ = sv[0];
  pid_ = pid;
  auto st = RoundTripLocked({{"op", "status"}});
  if (!st.ok()) {
    ReapLocked();
    return Status::Unavailable("keyd: did not start: " + st.status().message());
  }
  return Status::Ok();
}

void KeydProcess::ReapLocked() {
  if (fd_ >= 0) ::close(fd_);  // keyd exits on EOF
  fd_ = -1;
  pid_t pid = pid_.exchange(-1);
  sealed_ = true;
  if (pid <= 0) return;
  for (int i = 0; i < 25; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

KeydProcess::~KeydProcess() {
  std::lock_guard<std::mutex> lock(mu_);
  ReapLocked();
}

StatusOr<nlohmann::json> KeydProcess::RoundTripLocked(const nlohmann::json& request) {
  Status w = WriteFrame(fd_, request);
  StatusOr<nlohmann::json> reply = w.ok() ? ReadFrame(fd_) : StatusOr<nlohmann::json>(w);
  if (!reply.ok()) {
    ReapLocked();
    return Status::Unavailable("keyd stopped while answering (" + reply.status().message() +
                               "); the request was not completed and will not be retried. The "
                               "server restarts keyd: retry");
  }
  if (reply->contains("sealed") && (*reply)["sealed"].is_boolean())
    sealed_ = (*reply)["sealed"].get<bool>();
  TOANI_RETURN_IF_ERROR(ReplyStatus(*reply));
  return reply;
}

Status KeydProcess::EnsureRunningLocked() {
  if (fd_ >= 0) return Status::Ok();
  if (std::chrono::steady_clock::now() - last_start_ < std::chrono::seconds(1)) {
    return Status::Unavailable("keyd is not running; the server is restarting it: retry shortly");
  }
  Status st = StartLocked();
  if (!st.ok())
    return Status::Unavailable("keyd is not running and could not be restarted: " + st.message());
  return Status::Ok();
}

StatusOr<nlohmann::json> KeydProcess::Call(const nlohmann::json& request) {
  std::lock_guard<std::mutex> lock(mu_);
  TOANI_RETURN_IF_ERROR(EnsureRunningLocked());
  auto reply = RoundTripLocked(request);
  if (!reply.ok() && reply.status().message().rfind("keyd is sealed", 0) == 0) sealed_ = true;
  return reply;
}

StatusOr<std::string> KeydProcess::CallBinary(std::string_view frame) {
  if (!IsBinaryFrame(frame)) return Status::InvalidArgument("keyd: not a binary frame");
  std::lock_guard<std::mutex> lock(mu_);
  TOANI_RETURN_IF_ERROR(EnsureRunningLocked());
  Status w = WriteRawFrame(fd_, frame);
  StatusOr<std::string> reply = w.ok() ? ReadRawFrame(fd_) : StatusOr<std::string>(w);
  if (!reply.ok()) {
    ReapLocked();
    return Status::Unavailable("keyd stopped while answering (" + reply.status().message() +
                               "); the request was not completed and will not be retried. The "
                               "server restarts keyd: retry");
  }
  if (!reply->empty() && (*reply)[0] == '{') {  // the JSON error object
    auto j = DecodeFrameBody(*reply);
    Status st = j.ok() ? ReplyStatus(*j) : Status::Unavailable("keyd: malformed reply");
    if (st.ok()) st = Status::Unavailable("keyd: unexpected reply to a binary frame");
    if (st.message().rfind("keyd is sealed", 0) == 0) sealed_ = true;
    return st;
  }
  return reply;
}

}  // namespace toani::keyd
