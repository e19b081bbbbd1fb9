#include "connectors/http_job.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
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

Status ParseInjection(const json& inject, HttpJob& job) {
  Injection& in = job.inject;
  TOANI_ASSIGN_OR_RETURN(in.kind, RequiredString(inject, "kind", "inject.kind"));
  TOANI_ASSIGN_OR_RETURN(in.field, OptionalString(inject, "field", "inject.field"));
  if (in.kind == "header") {
    TOANI_ASSIGN_OR_RETURN(in.name, RequiredString(inject, "name", "inject.name"));
    if (!IsToken(in.name)) return Invalid("inject.name", "bad header name");
    TOANI_ASSIGN_OR_RETURN(in.prefix, OptionalString(inject, "prefix", "inject.prefix"));
    if (HasCrLfNul(in.prefix) || in.prefix.size() > 256) {
      return Invalid("inject.prefix", "has CR, LF or NUL or exceeds 256 bytes");
    }
  } else if (in.kind == "query") {
    TOANI_ASSIGN_OR_RETURN(in.name, RequiredString(inject, "name", "inject.name"));
    if (in.name.size() > 128 || !std::all_of(in.name.begin(), in.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
        })) {
      return Invalid("inject.name", "query parameter names are [A-Za-z0-9_.-]{1,128}");
    }
    if (in.name.empty()) return Invalid("inject.name", "empty");
  } else if (in.kind == "basic") {
    TOANI_ASSIGN_OR_RETURN(in.username, OptionalString(inject, "username", "inject.username"));
    TOANI_ASSIGN_OR_RETURN(in.username_field,
                           OptionalString(inject, "username_field", "inject.username_field"));
    if (in.username.find(':') != std::string::npos || HasCrLfNul(in.username)) {
      return Invalid("inject.username", "no ':', CR, LF or NUL");
    }
  } else if (in.kind != "none") {
    return Invalid("inject.kind", "must be header, query, basic or none");
  }
  // Headers that would change framing, routing or the injected credential.
  const std::string inject_lower = in.kind == "header" ? Lower(in.name) : "";
  for (const auto& [name, value] : job.headers) {
    const std::string n = Lower(name);
    if (n == "host" || n == "content-length" || n == "transfer-encoding" || n == "connection" ||
        n == "proxy-authorization" || n == "proxy-connection" || n == inject_lower ||
        (in.kind == "basic" && n == "authorization")) {
      return Invalid("request.headers", "header '" + name + "' may not be set by the request");
    }
  }
  return Status::Ok();
}

StatusOr<FormSpec> ParseForm(const json& f) {
  if (!f.is_object()) return Invalid("form", "must be an object");
  FormSpec form;
  TOANI_ASSIGN_OR_RETURN(form.encoding, RequiredString(f, "encoding", "form.encoding"));
  if (form.encoding != "urlencoded" && form.encoding != "multipart") {
    return Invalid("form.encoding", "urlencoded or multipart");
  }
  const json* fields = Find(f, "fields");
  if (fields == nullptr || !fields->is_array() || fields->empty() || fields->size() > 64) {
    return Invalid("form.fields", "1..64 entries required");
  }
  for (const json& e : *fields) {
    if (!e.is_object()) return Invalid("form.fields", "entries are objects");
    FormField ff;
    TOANI_ASSIGN_OR_RETURN(ff.name, RequiredString(e, "name", "form.fields.name"));
    if (ff.name.empty() || ff.name.size() > 256 || HasCrLfNul(ff.name) ||
        ff.name.find('"') != std::string::npos) {
      return Invalid("form.fields.name", "1..256 bytes without CR, LF, NUL or '\"'");
    }
    TOANI_ASSIGN_OR_RETURN(ff.value, OptionalString(e, "value", "form.fields.value"));
    TOANI_ASSIGN_OR_RETURN(ff.credential_field,
                           OptionalString(e, "credential_field", "form.fields.credential_field"));
    if (ff.value.size() > 65536) return Invalid("form.fields.value", "exceeds 64 KiB");
    form.fields.push_back(std::move(ff));
  }
  return form;
}

StatusOr<OauthSpec> ParseOauth(const json& o) {
  if (!o.is_object()) return Invalid("oauth", "must be an object");
  OauthSpec spec;
  TOANI_ASSIGN_OR_RETURN(spec.token_url, RequiredString(o, "token_url", "oauth.token_url"));
  if (Status st = CheckUrl(spec.token_url); !st.ok()) {
    return Invalid("oauth.token_url", "must be an absolute https URL");
  }
  TOANI_ASSIGN_OR_RETURN(spec.client_auth, OptionalString(o, "client_auth", "oauth.client_auth"));
  if (spec.client_auth.empty()) spec.client_auth = "basic";
  if (spec.client_auth != "basic" && spec.client_auth != "body") {
    return Invalid("oauth.client_auth", "basic or body");
  }
  TOANI_ASSIGN_OR_RETURN(spec.scope, OptionalString(o, "scope", "oauth.scope"));
  if (HasCrLfNul(spec.scope) || spec.scope.size() > 1024)
    return Invalid("oauth.scope", "bad scope");
  return spec;
}

StatusOr<BrowserSpec> ParseBrowser(const json& b) {
  if (!b.is_object()) return Invalid("browser", "must be an object");
  BrowserSpec spec;
  if (const json* s = Find(b, "screenshots"); s != nullptr) {
    if (!s->is_boolean()) return Invalid("browser.screenshots", "must be a boolean");
    spec.screenshots = s->get<bool>();
  }
  if (const json* c = Find(b, "chromium"); c != nullptr) {
    if (!c->is_string() || c->get<std::string>().empty() || c->get<std::string>()[0] != '/') {
      return Invalid("browser.chromium", "an absolute path");
    }
    spec.chromium_path = c->get<std::string>();
  }
  if (const json* t = Find(b, "step_timeout_ms"); t != nullptr) {
    if (!t->is_number_unsigned() || t->get<uint64_t>() < 1 || t->get<uint64_t>() > 120000) {
      return Invalid("browser.step_timeout_ms", "1..120000");
    }
    spec.step_timeout_ms = t->get<uint64_t>();
  }
  const json* steps = Find(b, "steps");
  if (steps == nullptr || !steps->is_array() || steps->empty() || steps->size() > 64) {
    return Invalid("browser.steps", "1..64 steps required");
  }
  for (const json& e : *steps) {
    if (!e.is_object()) return Invalid("browser.steps", "each step is an object");
    BrowserStep st;
    TOANI_ASSIGN_OR_RETURN(st.op, RequiredString(e, "op", "browser.steps.op"));
    TOANI_ASSIGN_OR_RETURN(st.url, OptionalString(e, "url", "browser.steps.url"));
    TOANI_ASSIGN_OR_RETURN(st.selector, OptionalString(e, "selector", "browser.steps.selector"));
    TOANI_ASSIGN_OR_RETURN(st.value, OptionalString(e, "value", "browser.steps.value"));
    TOANI_ASSIGN_OR_RETURN(st.credential_field,
                           OptionalString(e, "credential_field", "browser.steps.credential_field"));
    TOANI_ASSIGN_OR_RETURN(st.name, OptionalString(e, "name", "browser.steps.name"));
    if (st.selector.size() > 1024) return Invalid("browser.steps.selector", "exceeds 1 KiB");
    if (st.op == "goto") {
      TOANI_RETURN_IF_ERROR(CheckUrl(st.url));
    } else if (st.op == "fill") {
      if (st.selector.empty()) return Invalid("browser.steps", "fill needs a selector");
    } else if (st.op == "click" || st.op == "wait_for") {
      if (st.selector.empty()) return Invalid("browser.steps", st.op + " needs a selector");
    } else if (st.op == "extract") {
      if (st.selector.empty() || st.name.empty()) {
        return Invalid("browser.steps", "extract needs a selector and a name");
      }
    } else if (st.op != "wait_navigation" && st.op != "screenshot") {
      return Invalid("browser.steps.op",
                     "goto, fill, click, wait_for, wait_navigation, extract or screenshot");
    }
    spec.steps.push_back(std::move(st));
  }
  return spec;
}

}  // namespace

bool HostAllowed(const std::vector<EgressHostPort>& rules, std::string_view host, uint16_t port) {
  std::string h = Lower(host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  for (const EgressHostPort& r : rules) {
    if (r.port != port) continue;
    if (r.host.starts_with("*.")) {
      std::string_view suffix = std::string_view(r.host).substr(1);  // ".example.com"
      if (h.size() > suffix.size() && h.ends_with(suffix)) return true;
    } else if (r.host == h) {
      return true;
    }
  }
  return false;
}

StatusOr<HttpJob> ParseHttpJob(std::string_view line) {
  if (line.size() > kMaxJobLineBytes) return Invalid("job", "line exceeds 1 MiB");
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Invalid("job", "not a JSON object");
  HttpJob job;
  TOANI_ASSIGN_OR_RETURN(std::string type, RequiredString(j, "type", "type"));
  if (type != "job") return Invalid("type", "must be \"job\"");
  TOANI_ASSIGN_OR_RETURN(job.connector, RequiredString(j, "connector", "connector"));
  if (job.connector != "http" && job.connector != "oauth" && job.connector != "form" &&
      job.connector != "browser") {
    return Invalid("connector", "must be http, oauth, form or browser");
  }

  if (job.connector == "browser") {
    const json* b = Find(j, "browser");
    if (b == nullptr) return Invalid("browser", "missing");
    TOANI_ASSIGN_OR_RETURN(job.browser, ParseBrowser(*b));
  } else {
    const json* req = Find(j, "request");
    if (req == nullptr) return Invalid("request", "missing");
    TOANI_RETURN_IF_ERROR(ParseRequest(*req, job));
    const json* inject = Find(j, "inject");
    if (inject == nullptr || !inject->is_object())
      return Invalid("inject", "missing or not an object");
    TOANI_RETURN_IF_ERROR(ParseInjection(*inject, job));
  }
  if (job.connector == "form") {
    const json* f = Find(j, "form");
    if (f == nullptr) return Invalid("form", "missing");
    TOANI_ASSIGN_OR_RETURN(job.form, ParseForm(*f));
    if (job.method != "POST" && job.method != "PUT" && job.method != "PATCH") {
      return Invalid("request.method", "a form is sent with POST, PUT or PATCH");
    }
    if (!job.body.empty()) return Invalid("request.body", "must be empty for a form");
  }
  if (job.connector == "oauth") {
    const json* o = Find(j, "oauth");
    if (o == nullptr) return Invalid("oauth", "missing");
    TOANI_ASSIGN_OR_RETURN(job.oauth, ParseOauth(*o));
    if (const json* k = Find(j, "reseal_public_key"); k != nullptr) {
      if (!k->is_string()) return Invalid("reseal_public_key", "must be a string");
      StatusOr<Bytes> pk = Base64UrlDecodeStrict(k->get<std::string>());
      if (!pk.ok() || pk->size() != 32)
        return Invalid("reseal_public_key", "not 32 bytes base64url");
      job.reseal_public_key = std::move(pk).value();
    }
  }
  if (const json* r = Find(j, "redirects"); r != nullptr) {
    if (!r->is_object()) return Invalid("redirects", "must be an object");
    const json* m = Find(*r, "max");
    if (m == nullptr || !m->is_number_unsigned() || m->get<uint64_t>() > 10) {
      return Invalid("redirects.max", "an integer 0..10");
    }
    job.max_redirects = m->get<uint64_t>();
    const json* allow = Find(*r, "allow");
    if (job.max_redirects > 0 && (allow == nullptr || !allow->is_array())) {
      return Invalid("redirects.allow", "required with max > 0: [{host, port}]");
    }
    if (allow != nullptr) {
      if (!allow->is_array() || allow->size() > 64) return Invalid("redirects.allow", "an array");
      for (const json& e : *allow) {
        if (!e.is_object() || !Find(e, "host") || !e["host"].is_string()) {
          return Invalid("redirects.allow", "entries are {host, port}");
        }
        uint64_t port =
            e.contains("port") && e["port"].is_number_unsigned() ? e["port"].get<uint64_t>() : 443;
        if (port < 1 || port > 65535) return Invalid("redirects.allow", "bad port");
        job.allow.push_back({Lower(e["host"].get<std::string>()), static_cast<uint16_t>(port)});
      }
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
