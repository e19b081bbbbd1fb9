// The connector part of a policy action (docs/policy.md "Connectors"): which kind of
// connector runs, how the credential is injected, the form fields, the OAuth token
// endpoint, the browser steps, the webhook completion, redirects — and the response
// rules applied to what the agent gets back. Parsed when a policy is applied; turned
// into the connector's job (docs/connector-protocol.md §3) at execution.
//
// Steps, form fields and endpoints come only from the (signed) policy; an agent's
// parameters can fill values the policy marks with {{name}}, never add steps, change
// a URL or pick a credential field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace toani::policy {

struct InjectSpec {
  std::string kind = "header";  // header | query | basic | none
  std::string name = "Authorization";
  std::string prefix;          // header only, e.g. "Bearer "
  std::string field;           // credential field to inject; "" = the whole plaintext
  std::string username;        // basic: literal user name ...
  std::string username_field;  // ... or a credential field
};

struct FormFieldSpec {
  std::string name;
  std::string value;             // literal; may hold {{param}} placeholders
  std::string credential_field;  // or: the value is this credential field
};

struct BrowserStepSpec {
  std::string op;  // goto fill click wait_for wait_navigation extract screenshot
  std::string url, selector, value, credential_field, name;
};

struct ResponseRules {
  size_t max_bytes = 1 << 20;              // 1 B .. 16 MiB
  std::vector<std::string> keep_fields;    // JSON pointers; non-empty: only these are kept
  std::vector<std::string> redact_fields;  // JSON pointers replaced by "[REDACTED]"
  std::vector<std::string> headers;        // response headers returned (lower case)
  bool screenshots = false;                // browser screenshot steps run only if true
};

struct ConnectorSpec {
  std::string kind = "http";  // http | oauth | form | browser | webhook
  InjectSpec inject;
  uint64_t max_redirects = 0;  // followed only within the action's egress allow-list
  // form
  std::string form_encoding;  // urlencoded | multipart
  std::vector<FormFieldSpec> form_fields;
  // oauth
  std::string oauth_token_url, oauth_client_auth = "basic", oauth_scope;
  // browser
  std::vector<BrowserStepSpec> steps;
  uint64_t step_timeout_ms = 10000;
  // webhook
  std::string webhook_secret_credential;  // a credential holding the whsec_ secret
  int64_t webhook_timeout_seconds = 3600;
  ResponseRules response;
};

// Parses the connector fields of `action` (connector, inject, form, oauth, browser,
// webhook, redirects, response). `where` prefixes every error ("actions.x"). `egress`
// hosts ("host" or "*.suffix") and ports must cover the token endpoint and every
// browser URL.
Status ParseConnectorSpec(const nlohmann::json& action, const std::string& where,
                          ConnectorSpec& out);

// True if host:port matches an egress rule {host, port}.
bool EgressCovers(const nlohmann::json& egress, const std::string& host, uint16_t port);

// The connector-specific members of the job message: connector, inject, form, oauth,
// browser, redirects (docs/connector-protocol.md §3). `params` fill {{placeholders}}.
// `egress` is the action's allow-list (redirect targets).
StatusOr<nlohmann::json> ConnectorJobFields(const ConnectorSpec& spec, const nlohmann::json& params,
                                            const nlohmann::json& egress);

// Applies the response rules to a connector result body that is already scrubbed:
// with keep_fields, only those JSON pointers survive (a non-JSON body is refused:
// FailedPrecondition); redact_fields are replaced by "[REDACTED]".
StatusOr<std::string> ApplyResponseRules(const ResponseRules& rules, const std::string& body);

}  // namespace toani::policy
