// KeydClient: the server's handle on its toani-keyd child process. Starts keyd with
// one end of a socketpair as fd 3 and sends it framed requests. Every error talking
// to keyd is Unavailable, so callers fail closed (HTTP 503).
//
// Pipelining: calls from many threads share the one socket without waiting for each
// other's round trips. Each caller writes its frame (in turn) and keyd, which answers
// strictly in order, finds the next frames already queued, so one wake-up of keyd serves
// many requests. Replies are matched to callers in the order the frames were written;
// whichever waiting caller finds no reader reads replies for all until its own arrives.
//
// Supervision: if keyd dies (or stops answering) during a request, that request — and
// every other request in flight on the same socket — fails with Unavailable; none is
// retried, since keyd may or may not have acted on it, and the dead child is reaped.
// The next request starts a new keyd (at most one attempt per second). A new keyd in dev
// mode unseals itself from the key file; in Shamir mode it starts sealed and the server
// answers 503 until an operator unseals.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"
#include "keyd/protocol.h"

namespace toani::keyd {

class KeyServiceClient {
 public:
  virtual ~KeyServiceClient() = default;
  // Sends one request (docs/formats.md §1); returns the reply or the error it carried.
  virtual StatusOr<nlohmann::json> Call(const nlohmann::json& request) = 0;
  // Sends one binary frame (docs/formats.md §1.1) and returns the binary reply payload;
  // an error reply becomes the error it carried.
  virtual StatusOr<std::string> CallBinary(std::string_view frame) = 0;
  // A binary call whose frame has been sent; Await returns what CallBinary would have.
  // Destroying it without Await waits for the reply all the same.
  class PendingCall {
   public:
    virtual ~PendingCall() = default;
    virtual StatusOr<std::string> Await() = 0;
  };
  // Sends a binary frame and returns without waiting for keyd's answer, so that a caller
  // can queue the next frame behind it (keyd answers frames in the order they were sent).
  // Await may be called from another thread. This default answers synchronously.
  virtual std::unique_ptr<PendingCall> SubmitBinary(std::string_view frame);
  // Whether keyd last said it is sealed (no root key). Test doubles: never sealed.
  virtual bool Sealed() const { return false; }
};

class KeydProcess : public KeyServiceClient {
 public:
  // Starts `keyd_path [--dev] --state-dir state_dir` and waits for its status reply.
  static StatusOr<std::unique_ptr<KeydProcess>> Spawn(const std::string& keyd_path,
                                                      const std::string& state_dir,
                                                      bool dev = true);
  ~KeydProcess() override;
  StatusOr<nlohmann::json> Call(const nlohmann::json& request) override;  // thread-safe
  StatusOr<std::string> CallBinary(std::string_view frame) override;      // thread-safe
  std::unique_ptr<PendingCall> SubmitBinary(std::string_view frame) override;
  bool Sealed() const override { return sealed_.load(); }
  pid_t pid() const { return pid_.load(); }  // -1 while no keyd runs

 private:
  KeydProcess(std::string path, std::string state_dir, bool dev)
      : path_(std::move(path)), state_dir_(std::move(state_dir)), dev_(dev) {}
  // One caller's request in flight.
  struct Waiter {
    StatusOr<std::string> reply = Status::Unavailable("keyd: no reply");  // the raw payload
    bool done = false;
    bool waiting = false;  // its caller is in Await (a submitted call may not be yet)
    std::condition_variable cv;
  };
  class Pending;
  // The socket to one keyd child; closed when the last caller using it lets go.
  struct Conn {
    explicit Conn(int f) : fd(f), reader(f) {}
    ~Conn();
    const int fd;
    std::deque<Waiter*> inflight;  // in the order their frames were written (under mu_)
    bool reader_active = false;    // a caller is reading replies (under mu_)
    FrameReader reader;            // used by the reading caller only
  };
  Status StartLocked();  // spawns keyd and reads its status; needs write_mu_ and mu_
  void ReapLocked();     // shuts the socket down, kills and reaps the child
  // Fails every request in flight on `conn` and, if it is still the current one, reaps keyd.
  void FailLocked(const std::shared_ptr<Conn>& conn, const std::string& why);
  // Writes one frame payload (JSON text or a binary frame) and returns keyd's reply
  // payload, pipelined with other callers on the same socket.
  StatusOr<std::string> Exchange(std::string_view payload);
  // The two halves of Exchange. Submit queues `me` and writes the frame (an error before
  // queueing is returned; one after completes `me` with it); Await waits for `me`'s reply,
  // reading replies for every caller in flight while no one else does.
  Status Submit(std::string_view payload, Waiter* me, std::shared_ptr<Conn>* conn);
  StatusOr<std::string> Await(Waiter* me, const std::shared_ptr<Conn>& conn);
  // A binary reply payload, or the error a JSON error reply carried.
  StatusOr<std::string> BinaryReply(StatusOr<std::string> got);

  const std::string path_, state_dir_;
  const bool dev_;
  std::mutex write_mu_;  // one frame written at a time; taken before mu_
  std::mutex mu_;        // conn_, pid_ changes, every Conn's inflight and reader_active
  std::shared_ptr<Conn> conn_;
  std::atomic<pid_t> pid_{-1};
  std::atomic<bool> sealed_{true};
  std::chrono::steady_clock::time_point last_start_{};
};

}  // namespace toani::keyd
