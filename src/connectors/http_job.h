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

// Where the credential goes in an http/oauth request (docs/connector-protocol.md §3.1).
struct Injection {
  std::string kind = "header";  // header | query | basic | none
  std::string name;             // header: header name; query: parameter name
  std::string prefix;           // header: literal text before the value, e.g. "Bearer "
  std::string field;            // the credential field injected ("" = whole plaintext)
  std::string username;         // basic: literal user name ...
  std::string username_field;   // ... or the credential field holding it
};

struct FormField {
  std::string name;
  std::string value;             // literal (already rendered from parameters)
  std::string credential_field;  // non-empty: the value is this credential field
};

struct FormSpec {
  std::string encoding;  // urlencoded | multipart
  std::vector<FormField> fields;
};

struct OauthSpec {
  std::string token_url;    // https, must be in the egress allow-list
  std::string client_auth;  // basic | body
  std::string scope;        // "" = none sent
};

struct BrowserStep {
  std::string op;        // goto | fill | click | wait_for | wait_navigation | extract | screenshot
  std::string url;       // goto
  std::string selector;  // fill, click, wait_for, extract
  std::string value;     // fill: literal (rendered from a parameter)
  std::string credential_field;  // fill: from this credential field
  std::string name;              // extract, screenshot: the result key
};

struct BrowserSpec {
  std::vector<BrowserStep> steps;
  bool screenshots = false;  // screenshot steps run only when true
  std::string chromium_path = "/usr/lib/chromium/chromium";
  uint64_t step_timeout_ms = 10000;
};

struct EgressHostPort {
  std::string host;  // exact or "*.suffix"
  uint16_t port = 443;
};

struct HttpJob {
  std::string connector = "http";  // http | oauth | form | browser
  std::string method;              // GET HEAD POST PUT PATCH DELETE
  std::string url;                 // absolute https URL
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Injection inject;
  // Redirects followed (0 = none); each target must be https and match `allow`.
  uint64_t max_redirects = 0;
  std::vector<EgressHostPort> allow;
  std::optional<FormSpec> form;
  std::optional<OauthSpec> oauth;
  std::optional<BrowserSpec> browser;
  Bytes reseal_public_key;   // oauth: keyd's intake key, for a rotated refresh token
  Bytes sealed_credential;   // crypto_box_seal ciphertext
  std::string proxy_socket;  // absolute path inside the sandbox
  std::optional<std::string> ca_file;
  uint64_t max_response_bytes = 0;
  uint64_t timeout_ms = 0;
};

// True if host:port is allowed by `rules` (exact name or "*.suffix", exact port).
bool HostAllowed(const std::vector<EgressHostPort>& rules, std::string_view host, uint16_t port);

// Parses one job line. Returns InvalidArgument naming the offending field on any
// violation of §3 (wrong type, missing field, refused header, non-https URL...).
StatusOr<HttpJob> ParseHttpJob(std::string_view line);

// Checks a value can be injected into a header: 1..8192 bytes, no CR, LF or NUL.
// The message never includes the value.
Status ValidateCredentialForHeader(const SecretBytes& credential);

}  // namespace toani
