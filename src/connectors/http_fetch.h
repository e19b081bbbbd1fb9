// HTTP for the connectors, with libcurl through the egress proxy's SOCKS5 Unix socket
// (https only, TLS verified, no cookies, no content decoding). Runs inside the sandbox.
#pragma once

#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/secret.h"
#include "common/status.h"
#include "connectors/credential_set.h"
#include "connectors/http_job.h"

namespace toani {

struct HttpResponse {
  long status = 0;
  std::string content_type;                                  // "" if absent
  std::vector<std::pair<std::string, std::string>> headers;  // of the final response, raw
  std::string body;        // raw, NOT scrubbed: the caller scrubs and wipes it
  std::string location;    // Location header of a 3xx ("" otherwise)
  uint64_t redirects = 0;  // redirects followed to get here
  // Of the last request, from its start (curl's timers, µs): connected to the target
  // through the egress proxy, TLS handshake done, first response byte, complete.
  int64_t connect_us = 0, tls_us = 0, first_byte_us = 0, total_us = 0;
};

// Header lines and other strings that may hold a secret: wiped when destroyed.
class WipedStrings {
 public:
  WipedStrings() = default;
  WipedStrings(const WipedStrings&) = delete;
  WipedStrings& operator=(const WipedStrings&) = delete;
  ~WipedStrings();
  // The reference stays valid for the holder's lifetime (a list: no reallocation).
  std::string& Add(std::string s);

 private:
  std::list<std::string> list_;
};

// Where and how a request travels: proxy socket, CA file, limits.
struct Transport {
  std::string proxy_socket;
  std::optional<std::string> ca_file;
  uint64_t max_response_bytes = 1 << 20;
  uint64_t timeout_ms = 10000;
};
Transport TransportOf(const HttpJob& job);

// One request, redirects not followed. `header_lines` are "Name: value" lines.
// Unavailable with curl's message on transport failure (not scrubbed: callers scrub),
// PayloadTooLarge past max_response_bytes. Requires curl_global_init.
StatusOr<HttpResponse> SendOnce(const Transport& t, const std::string& method,
                                const std::string& url,
                                const std::vector<std::string>& header_lines,
                                const std::string& body);

// The job's request with the credential injected as job.inject says (header, query or
// basic auth; for the form connector the body is assembled from job.form), following at
// most job.max_redirects redirects, each only to an https URL whose host and port
// job.allow names; the credential is sent again only to the original host and port.
// `bearer_override`: inject this value (an OAuth access token) instead of the credential.
StatusOr<HttpResponse> PerformHttp(const HttpJob& job, const CredentialSet& creds,
                                   const SecretBytes* bearer_override = nullptr);

// application/x-www-form-urlencoded encoding of one name or value (space as '+').
std::string FormUrlEncode(std::string_view s);

}  // namespace toani
