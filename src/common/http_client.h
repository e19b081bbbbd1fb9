// A minimal HTTPS client on libcurl for toani's own mTLS endpoints (CLI, mcp-stdio
// bridge, tests, demo). TLS 1.3 or nothing; peer and host name always verified.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace toani {

struct ClientTls {
  // PEM CA bundle the server must chain to. When set, it is the ONLY trust anchor (the
  // system store is not consulted). Empty: the system trust store.
  std::string ca_file;
  std::string cert_file;  // PEM client certificate; empty = present none
  std::string key_file;   // PEM private key for cert_file
};

struct ClientResponse {
  long status = 0;           // HTTP status code
  std::string content_type;  // Content-Type header, "" if absent
  std::string body;
};

// Maximum response body HttpsCall accepts before failing with Unavailable.
inline constexpr size_t kMaxClientResponseBytes = 64 << 20;

// Performs one request: `method` (e.g. "GET", "POST"), `url` (https:// only; redirects
// are not followed; environment proxies are ignored). `body` is sent when non-empty,
// with `content_type` when non-empty. Any HTTP status is a successful call: check
// `status`. Thread-safe; each call uses its own connection.
// Errors: InvalidArgument for a non-https URL or bad method; Unavailable (with curl's
// message) for DNS, connect, TLS, verification, timeout or oversize-response failures.
// `extra_headers` (name, value) are added as given; a name or value with a control
// character, or a name with ':' or a space, is InvalidArgument.
StatusOr<ClientResponse> HttpsCall(
    std::string_view method, const std::string& url, std::string_view body,
    std::string_view content_type, const ClientTls& tls,
    std::chrono::milliseconds timeout = std::chrono::seconds(30),
    const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

}  // namespace toani
