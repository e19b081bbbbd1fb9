// Request templates: parameters go into a connector request as data, encoded for
// their position. Placeholders are "{{name}}" and may appear only in path
// segments, query values, header values and JSON body string values; never in
// the scheme, host or port, so a parameter cannot change where a request goes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace toani::policy {

struct RenderedRequest {
  std::string method;
  std::string url;  // scheme://host:port/path?query, fully encoded
  std::string host;
  uint16_t port = 443;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Checks a template without parameters (at policy apply time).
Status ValidateTemplate(const nlohmann::json& tmpl);
StatusOr<RenderedRequest> RenderRequest(const nlohmann::json& tmpl, const nlohmann::json& params);

// RFC 3986 percent-encoding of everything but unreserved characters.
std::string PercentEncode(std::string_view s);

}  // namespace toani::policy
