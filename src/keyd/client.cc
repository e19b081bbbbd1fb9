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
  std::lock_guard<std::mutex> wlock(p->write_mu_);
  std::lock_guard<std::mutex> lock(p->mu_);
  TOANI_RETURN_IF_ERROR(p->StartLocked());
  return p;
}

KeydProcess::Conn::~Conn() { ::close(fd); }  // keyd exits on EOF

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
  conn_ = std::make_shared<Conn>(sv[0]);
  pid_ = pid;
  // Nothing else is in flight yet (the caller holds both locks): a plain round trip.
  Status w = WriteFrame(conn_->fd, {{"op", "status"}});
  StatusOr<nlohmann::json> st = w.ok() ? ReadFrame(conn_->fd) : StatusOr<nlohmann::json>(w);
  if (st.ok()) {
    if (Status s = ReplyStatus(*st); !s.ok()) st = s;
  }
  if (!st.ok()) {
    ReapLocked();
    return Status::Unavailable("keyd: did not start: " + st.status().message());
  }
  sealed_ = st->value("sealed", true);
  return Status::Ok();
}

void KeydProcess::ReapLocked() {
  if (conn_) {
    // Wakes any caller blocked on the socket; the fd itself closes with its last user.
    ::shutdown(conn_->fd, SHUT_RDWR);
    conn_.reset();
  }
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

void KeydProcess::FailLocked(const std::shared_ptr<Conn>& conn, const std::string& why) {
  const Status failed = Status::Unavailable(
      "keyd stopped while answering (" + why +
      "); the request was not completed and will not be retried. The server restarts keyd: "
      "retry");
  for (Waiter* w : conn->inflight) {
    w->reply = failed;
    w->done = true;
    w->cv.notify_one();
  }
  conn->inflight.clear();
  if (conn_ == conn) ReapLocked();
}

KeydProcess::~KeydProcess() {
  std::lock_guard<std::mutex> lock(mu_);
  ReapLocked();
}

Status KeydProcess::Submit(std::string_view payload, Waiter* me, std::shared_ptr<Conn>* conn) {
  // Frames go out one at a time, and each caller joins the in-flight queue in the same
  // order as its frame, so replies (which keyd sends in order) match.
  std::lock_guard<std::mutex> wlock(write_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!conn_) {
      if (std::chrono::steady_clock::now() - last_start_ < std::chrono::seconds(1)) {
        return Status::Unavailable(
            "keyd is not running; the server is restarting it: retry shortly");
      }
      Status st = StartLocked();
      if (!st.ok())
        return Status::Unavailable("keyd is not running and could not be restarted: " +
                                   st.message());
    }
    *conn = conn_;
    (*conn)->inflight.push_back(me);
  }
  // Not under mu_: a large frame may block until keyd reads it, and keyd may first
  // need its earlier replies read (by a caller that takes mu_).
  Status w = WriteRawFrame((*conn)->fd, payload);
  if (!w.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!me->done) FailLocked(*conn, w.message());
  }
  return Status::Ok();
}

StatusOr<std::string> KeydProcess::Await(Waiter* me, const std::shared_ptr<Conn>& conn) {
  std::unique_lock<std::mutex> lock(mu_);
  me->waiting = true;
  for (;;) {
    if (me->done) {
      // Replies already read in are handed out before leaving, so that no caller is
      // woken only to take them from the buffer.
      if (conn->reader_active || conn->inflight.empty() || !conn->reader.HasFrame()) break;
    } else if (conn->reader_active) {
      me->cv.wait(lock);
      continue;
    }
    // No one is reading: read replies, handing each to its caller, until ours is here.
    conn->reader_active = true;
    lock.unlock();
    StatusOr<std::string> reply = conn->reader.Next();
    lock.lock();
    conn->reader_active = false;
    if (!reply.ok() || conn->inflight.empty()) {
      FailLocked(conn, reply.ok() ? "a reply nobody asked for" : reply.status().message());
      break;
    }
    Waiter* w = conn->inflight.front();
    conn->inflight.pop_front();
    w->reply = std::move(reply);
    w->done = true;
    if (w != me) w->cv.notify_one();
  }
  me->waiting = false;
  // Hand the reading over to the first caller still waiting, if any (a submitted call
  // nobody awaits yet cannot read).
  if (!conn->reader_active) {
    for (Waiter* w : conn->inflight) {
      if (w->waiting) {
        w->cv.notify_one();
        break;
      }
    }
  }
  lock.unlock();
  return std::move(me->reply);
}

StatusOr<std::string> KeydProcess::Exchange(std::string_view payload) {
  Waiter me;
  std::shared_ptr<Conn> conn;
  TOANI_RETURN_IF_ERROR(Submit(payload, &me, &conn));
  return Await(&me, conn);
}

StatusOr<nlohmann::json> KeydProcess::Call(const nlohmann::json& request) {
  TOANI_ASSIGN_OR_RETURN(std::string raw, Exchange(request.dump()));
  auto reply = DecodeFrameBody(raw);
  if (!reply.ok()) return Status::Unavailable("keyd: malformed reply");
  if (reply->contains("sealed") && (*reply)["sealed"].is_boolean())
    sealed_ = (*reply)["sealed"].get<bool>();
  if (Status st = ReplyStatus(*reply); !st.ok()) {
    if (st.message().rfind("keyd is sealed", 0) == 0) sealed_ = true;
    return st;
  }
  return reply;
}

StatusOr<std::string> KeydProcess::BinaryReply(StatusOr<std::string> got) {
  if (!got.ok()) return got.status();
  const std::string& reply = *got;
  if (!reply.empty() && reply[0] == '{') {  // the JSON error object
    auto j = DecodeFrameBody(reply);
    Status st = j.ok() ? ReplyStatus(*j) : Status::Unavailable("keyd: malformed reply");
    if (st.ok()) st = Status::Unavailable("keyd: unexpected reply to a binary frame");
    if (st.message().rfind("keyd is sealed", 0) == 0) sealed_ = true;
    return st;
  }
  return got;
}

StatusOr<std::string> KeydProcess::CallBinary(std::string_view frame) {
  if (!IsBinaryFrame(frame)) return Status::InvalidArgument("keyd: not a binary frame");
  return BinaryReply(Exchange(frame));
}

// A submitted binary frame: its Waiter lives here (in the in-flight queue until answered).
class KeydProcess::Pending final : public KeyServiceClient::PendingCall {
 public:
  Pending(KeydProcess* owner, Status early) : early_(std::move(early)), owner_(owner) {}
  ~Pending() override {
    if (!awaited_) (void)Await();
  }
  StatusOr<std::string> Await() override {
    if (awaited_) return Status::FailedPrecondition("keyd: reply already taken");
    awaited_ = true;
    if (!early_.ok()) return early_;
    return owner_->BinaryReply(owner_->Await(&waiter_, conn_));
  }
  Waiter waiter_;
  std::shared_ptr<Conn> conn_;
  Status early_;  // the frame was never queued: this is the answer

 private:
  KeydProcess* owner_;
  bool awaited_ = false;
};

std::unique_ptr<KeyServiceClient::PendingCall> KeydProcess::SubmitBinary(std::string_view frame) {
  if (!IsBinaryFrame(frame)) {
    return std::make_unique<Pending>(this, Status::InvalidArgument("keyd: not a binary frame"));
  }
  auto p = std::make_unique<Pending>(this, Status::Ok());
  if (Status st = Submit(frame, &p->waiter_, &p->conn_); !st.ok()) p->early_ = st;
  return p;
}

namespace {
// The synchronous default: the reply is in before SubmitBinary returns.
class ReadyCall final : public KeyServiceClient::PendingCall {
 public:
  explicit ReadyCall(StatusOr<std::string> r) : r_(std::move(r)) {}
  StatusOr<std::string> Await() override { return std::move(r_); }

 private:
  StatusOr<std::string> r_;
};
}  // namespace

std::unique_ptr<KeyServiceClient::PendingCall> KeyServiceClient::SubmitBinary(
    std::string_view frame) {
  return std::make_unique<ReadyCall>(CallBinary(frame));
}

}  // namespace toani::keyd
