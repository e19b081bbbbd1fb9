// Starts a real `toani server --dev` in a temporary data directory for a test,
// and stops it (SIGTERM) when the harness goes out of scope.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/status.h"

namespace toani::testing {

class ServerHarness {
 public:
  ServerHarness();
  ~ServerHarness();
  Status Start();  // waits (with a deadline) for DATA/server.json
  // Appended to `toani server --dev --data D --listen 127.0.0.1:0` (set before Start).
  std::vector<std::string> extra_args;
  int Stop();      // SIGTERM; returns the exit status

  const std::string& address() const { return address_; }
  const std::string& data_dir() const { return data_; }
  const std::string& log_path() const { return log_; }
  std::string bin(const std::string& name) const;

  // One API call with the dev admin or agent certificate.
  StatusOr<ClientResponse> Call(const std::string& who, const std::string& method,
                                const std::string& path, const std::string& body,
                                const std::string& content_type = "application/json") const;
  StatusOr<nlohmann::json> CallJson(const std::string& who, const std::string& method,
                                    const std::string& path, const nlohmann::json& body = nullptr,
                                    long* status = nullptr) const;

 private:
  std::string root_, data_, log_, address_;
  pid_t pid_ = -1;
};

std::string ReadFileOrEmpty(const std::string& path);

}  // namespace toani::testing
