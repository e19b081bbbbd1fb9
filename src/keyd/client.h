// KeydClient: the server's handle on its toani-keyd child process. Starts keyd with
// one end of a socketpair as fd 3 and sends it framed requests. Every error talking
// to keyd is Unavailable, so callers fail closed (HTTP 503).
//
// Supervision: if keyd dies (or stops answering) during a request, that request fails
// with Unavailable — it is never retried, since keyd may or may not have acted on it —
// and the dead child is reaped. The next request starts a new keyd (at most one
// attempt per second). A new keyd in dev mode unseals itself from the key file; in
// Shamir mode it starts sealed and the server answers 503 until an operator unseals.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace toani::keyd {

class KeyServiceClient {
 public:
  virtual ~KeyServiceClient() = default;
  // Sends one request (docs/formats.md §1); returns the reply or the error it carried.
  virtual StatusOr<nlohmann::json> Call(const nlohmann::json& request) = 0;
  // Sends one binary frame (docs/formats.md §1.1) and returns the binary reply payload;
  // an error reply becomes the error it carried.
  virtual StatusOr<std::string> CallBinary(std::string_view frame) = 0;
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
  bool Sealed() const override { return sealed_.load(); }
  pid_t pid() const { return pid_.load(); }  // -1 while no keyd runs

 private:
  KeydProcess(std::string path, std::string state_dir, bool dev)
      : path_(std::move(path)), state_dir_(std::move(state_dir)), dev_(dev) {}
  Status StartLocked();  // spawns keyd and reads its status
  void ReapLocked();     // closes the socket, kills and reaps the child
  StatusOr<nlohmann::json> RoundTripLocked(const nlohmann::json& request);
  Status EnsureRunningLocked();

  const std::string path_, state_dir_;
  const bool dev_;
  std::mutex mu_;
  int fd_ = -1;
  std::atomic<pid_t> pid_{-1};
  std::atomic<bool> sealed_{true};
  std::chrono::steady_clock::time_point last_start_{};
};

}  // namespace toani::keyd
