// Performs one HTTP request of a job with libcurl, through the egress proxy's SOCKS5
// Unix socket, with the credential injected as a header. Runs inside the sandbox.
#pragma once

#include <string>

#include "common/secret.h"
#include "common/status.h"
#include "connectors/http_job.h"

namespace toani {

struct HttpResponse {
  long status = 0;
  std::string content_type;  // "" if absent
  std::string body;          // raw, NOT scrubbed: the caller scrubs and wipes it
};

// Sends `job` once (no redirects, https only, TLS verified). Returns Unavailable with
// curl's message on transport failure, PayloadTooLarge if the body exceeds
// job.max_response_bytes. Error messages are not scrubbed here; callers scrub them.
// Requires curl_global_init to have been called.
StatusOr<HttpResponse> PerformHttp(const HttpJob& job, const SecretBytes& credential);

}  // namespace toani
