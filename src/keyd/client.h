// KeydClient: the server's handle on its toani-keyd child process. Starts keyd
// with one end of a socketpair as fd 3 and sends it framed requests. Every error
// talking to keyd is Unavailable, so callers fail closed.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace toani::keyd {

class KeyServiceClient {
 public:
  virtual ~KeyServiceClient() = default;
  // Sends one request (docs/formats.md §1); returns the reply or the error it carried.
  virtual StatusOr<nlohmann::json> Call(const nlohmann::json& request) = 0;
};

class KeydProcess : public KeyServiceClient {
 public:
  // Starts `keyd_path --dev --state-dir state_dir` and waits for its status reply.
  static StatusOr<std::unique_ptr<KeydProcess>> Spawn(const std::string& keyd_path, const std::string& state_dir);
  ~KeydProcess() override;
  StatusOr<nlohmann::json> Call(const nlohmann::json& request) override;  // thread-safe
  pid_t pid() const { return pid_; }

 private:
  KeydProcess(int fd, pid_t pid) : fd_(fd), pid_(pid) {}
  std::mutex mu_;
  int fd_;
  pid_t pid_;
};

}  // namespace toani::keyd
