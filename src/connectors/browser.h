// The browser connector: Debian's Chromium, headless, inside the same sandbox, driven
// over the DevTools protocol on --remote-debugging-pipe by the policy's declarative
// steps (docs/connector-protocol.md §3.4). Chromium reaches targets only through the
// egress proxy: the connector relays a loopback SOCKS5 port inside the sandbox's empty
// network namespace to the proxy's Unix socket.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "connectors/credential_set.h"
#include "connectors/http_job.h"

namespace toani {

struct BrowserOutcome {
  Status status;
  nlohmann::json extracted = nlohmann::json::object();   // name -> text (unscrubbed)
  nlohmann::json screenshots = nlohmann::json::array();  // [{name, png_base64}]
};

BrowserOutcome RunBrowser(const HttpJob& job, const CredentialSet& creds);

}  // namespace toani
