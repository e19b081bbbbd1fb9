#include "connectors/http_job.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>

namespace toani {
namespace {

using nlohmann::json;

Status Invalid(std::string_view field, std::string_view why) {
  return Status::InvalidArgument("invalid job: " + std::string(field) + ": " + std::string(why));
}

bool IsTokenChar(char c) {  // RFC 9110 tchar
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && s.size() <= 256 && std::all_of(s.begin(), s.end(), IsTokenChar);
}

bool HasCrLfNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != s.npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

const json* Find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

StatusOr<std::string> RequiredString(const json& obj, const char* key, std::string_view field) {
  const json* v = Find(obj, key);
  if (v == nullptr) return Invalid(field, "missing");
  if (!v->is_string()) return Invalid(field, "must be a string");
  return v->get<std::string>();
}

StatusOr<std::string> OptionalString(const json& obj, const char* key, std::string_view field) {
  const json* v = Find(obj, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return Invalid(field, "must be a string");
  return v->get<std::string>();
}

StatusOr<uint64_t> RequiredUint(const json& obj, const char* key, std::string_view field,
                                uint64_t max) {
  const json* v = Find(obj, key);
  if (v == nullptr) return Invalid(field, "missing");
  if (!v->is_number_unsigned()) return Invalid(field, "must be a non-negative integer");
  const uint64_t n = v->get<uint64_t>();
  if (n < 1 || n > max) return Invalid(field, "out of range 1.." + std::to_string(max));
  return n;
}

Status CheckUrl(const std::string& url) {
  if (url.size() > 8192) return Invalid("request.url", "longer than 8 KiB");
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) return Invalid("request.url", "control, space or non-ASCII byte");
  }
  if (url.rfind("https://", 0) != 0) return Invalid("request.url", "only https URLs are allowed");
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> h(curl_url(), &curl_url_cleanup);
  if (!h) return Status::Internal("curl_url failed");
  if (curl_url_set(h.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return Invalid("request.url", "not a valid URL");
  }
  for (CURLUPart part : {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_FRAGMENT}) {
    char* out = nullptr;
    if (curl_url_get(h.get(), part, &out, 0) == CURLUE_OK) {
      curl_free(out);
      return Invalid("request.url", "user-info and fragments are not allowed");
    }
  }
  return Status::Ok();
}

Status CheckSocketPath(const std::string& p) {
  if (p.empty() || p.front() != '/' || p.size() > 100) {
    return Invalid("proxy_socket", "must be an absolute path of at most 100 bytes");
  }
  for (char c : p) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '/' || c == '.' || c == '_' || c == '-';
    if (!ok) return Invalid("proxy_socket", "only [A-Za-z0-9/._-] allowed");
  }
  if (p.find("..") != std::string::npos) return Invalid("proxy_socket", "no '..'");
  return Status::Ok();
}

Status ParseRequest(const json& req, HttpJob& job) {
  if (!req.is_object()) return Invalid("request", "must be an object");
  TOANI_ASSIGN_OR_RETURN(job.method, RequiredString(req, "method", "request.method"));
  static constexpr std::array<std::string_view, 6> kMethods = {"GET", "HEAD",  "POST",
                                                               "PUT", "PATCH", "DELETE"};
  if (std::find(kMethods.begin(), kMethods.end(), job.method) == kMethods.end()) {
    return Invalid("request.method", "must be one of GET HEAD POST PUT PATCH DELETE");
  }
  TOANI_ASSIGN_OR_RETURN(job.url, RequiredString(req, "url", "request.url"));
  TOANI_RETURN_IF_ERROR(CheckUrl(job.url));
  TOANI_ASSIGN_OR_RETURN(job.body, OptionalString(req, "body", "request.body"));
  if (!job.body.empty() && (job.method == "GET" || job.method == "HEAD")) {
    return Invalid("request.body", "not allowed with GET or HEAD");
  }
  if (const json* hs = Find(req, "headers"); hs != nullptr) {
    if (!hs->is_array()) return Invalid("request.headers", "must be an array");
    if (hs->size() > 64) return Invalid("request.headers", "more than 64 headers");
    for (const json& h : *hs) {
      if (!h.is_array() || h.size() != 2 || !h[0].is_string() || !h[1].is_string()) {
        return Invalid("request.headers", "each header must be [name, value] strings");
      }
      std::string name = h[0].get<std::string>();
      std::string value = h[1].get<std::string>();
      if (!IsToken(name)) return Invalid("request.headers", "bad header name");
      if (HasCrLfNul(value) || value.size() > 8192) {
        return Invalid("request.headers", "header value has CR, LF or NUL or exceeds 8 KiB");
      }
      job.headers.emplace_back(std::move(name), std::move(value));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<HttpJob> ParseHttpJob(std::string_view line) {
  if (line.size() > kMaxJobLineBytes) return Invalid("job", "line exceeds 1 MiB");
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Invalid("job", "not a JSON object");
  HttpJob job;
  TOANI_ASSIGN_OR_RETURN(std::string type, RequiredString(j, "type", "type"));
  if (type != "job") return Invalid("type", "must be \"job\"");
  TOANI_ASSIGN_OR_RETURN(std::string connector, RequiredString(j, "connector", "connector"));
  if (connector != "http") return Invalid("connector", "only \"http\" is supported");

  const json* req = Find(j, "request");
  if (req == nullptr) return Invalid("request", "missing");
  TOANI_RETURN_IF_ERROR(ParseRequest(*req, job));

  const json* inject = Find(j, "inject");
  if (inject == nullptr || !inject->is_object())
    return Invalid("inject", "missing or not an object");
  TOANI_ASSIGN_OR_RETURN(std::string kind, RequiredString(*inject, "kind", "inject.kind"));
  if (kind != "header") return Invalid("inject.kind", "only \"header\" is supported");
  TOANI_ASSIGN_OR_RETURN(job.inject_name, RequiredString(*inject, "name", "inject.name"));
  if (!IsToken(job.inject_name)) return Invalid("inject.name", "bad header name");
  TOANI_ASSIGN_OR_RETURN(job.inject_prefix, OptionalString(*inject, "prefix", "inject.prefix"));
  if (HasCrLfNul(job.inject_prefix) || job.inject_prefix.size() > 256) {
    return Invalid("inject.prefix", "has CR, LF or NUL or exceeds 256 bytes");
  }

  // Headers that would change framing, routing or the injected credential.
  const std::string inject_lower = Lower(job.inject_name);
  for (const auto& [name, value] : job.headers) {
    const std::string n = Lower(name);
    if (n == "host" || n == "content-length" || n == "transfer-encoding" || n == "connection" ||
        n == "proxy-authorization" || n == "proxy-connection" || n == inject_lower) {
      return Invalid("request.headers", "header '" + name + "' may not be set by the request");
    }
  }

  TOANI_ASSIGN_OR_RETURN(std::string sealed,
                         RequiredString(j, "sealed_credential", "sealed_credential"));
  StatusOr<Bytes> ct = Base64UrlDecodeStrict(sealed);
  if (!ct.ok()) return Invalid("sealed_credential", "not strict unpadded base64url");
  job.sealed_credential = std::move(ct).value();

  TOANI_ASSIGN_OR_RETURN(job.proxy_socket, RequiredString(j, "proxy_socket", "proxy_socket"));
  TOANI_RETURN_IF_ERROR(CheckSocketPath(job.proxy_socket));
  if (const json* ca = Find(j, "ca_file"); ca != nullptr) {
    if (!ca->is_string()) return Invalid("ca_file", "must be a string");
    std::string path = ca->get<std::string>();
    if (path.empty() || path.front() != '/' || HasCrLfNul(path)) {
      return Invalid("ca_file", "must be an absolute path");
    }
    job.ca_file = std::move(path);
  }

  const json* limits = Find(j, "limits");
  if (limits == nullptr || !limits->is_object())
    return Invalid("limits", "missing or not an object");
  TOANI_ASSIGN_OR_RETURN(job.max_response_bytes,
                         RequiredUint(*limits, "max_response_bytes", "limits.max_response_bytes",
                                      kMaxResponseBytesCap));
  TOANI_ASSIGN_OR_RETURN(job.timeout_ms,
                         RequiredUint(*limits, "timeout_ms", "limits.timeout_ms", kMaxTimeoutMs));
  return job;
}

Status ValidateCredentialForHeader(const SecretBytes& credential) {
  if (credential.empty() || credential.size() > 8192) {
    return Status::InvalidArgument("credential must be 1..8192 bytes");
  }
  if (HasCrLfNul(credential.UnsafeView())) {
    return Status::InvalidArgument("credential contains CR, LF or NUL; cannot inject as header");
  }
  return Status::Ok();
}

}  // namespace toani
