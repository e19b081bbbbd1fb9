// The `job` message of the connector protocol (docs/connector-protocol.md §3), parsed
// and validated. Everything in a job is untrusted input from outside the sandbox.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/encoding.h"
#include "common/secret.h"
#include "common/status.h"

namespace toani {

inline constexpr size_t kMaxJobLineBytes = 1 << 20;
inline constexpr uint64_t kMaxResponseBytesCap = 64ull << 20;
inline constexpr uint64_t kMaxTimeoutMs = 300000;

struct HttpJob {
  std::string method;  // GET HEAD POST PUT PATCH DELETE
  std::string url;     // absolute https URL
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string inject_name;    // header carrying the credential
  std::string inject_prefix;  // e.g. "Bearer "
  Bytes sealed_credential;    // crypto_box_seal ciphertext
  std::string proxy_socket;   // absolute path inside the sandbox
  std::optional<std::string> ca_file;
  uint64_t max_response_bytes = 0;
  uint64_t timeout_ms = 0;
};

// Parses one job line. Returns InvalidArgument naming the offending field on any
// violation of §3 (wrong type, missing field, refused header, non-https URL...).
StatusOr<HttpJob> ParseHttpJob(std::string_view line);

// Checks an opened credential can be injected into a header: 1..8192 bytes, no CR,
// LF or NUL. The message never includes the credential.
Status ValidateCredentialForHeader(const SecretBytes& credential);

}  // namespace toani
