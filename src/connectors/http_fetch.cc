#include "connectors/http_fetch.h"

#include <curl/curl.h>
#include <sodium.h>

#include <cstring>
#include <memory>

#include "common/encoding.h"

namespace toani {
namespace {

struct BodySink {
  std::string* body;
  uint64_t max;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  const size_t n = size * nmemb;
  if (sink->body->size() + n > sink->max) {
    sink->overflow = true;
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

struct HeaderSink {
  std::vector<std::pair<std::string, std::string>>* headers;
  size_t bytes = 0;
};

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

size_t WriteHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<HeaderSink*>(user);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  sink->bytes += n;
  if (sink->bytes > (256u << 10)) return 0;  // 256 KiB of headers is an attack
  if (line.starts_with("HTTP/")) {
    sink->headers->clear();  // a new response (after 1xx): keep only the last one's
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || sink->headers->size() >= 200) return n;
  sink->headers->emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
  return n;
}

class HeaderList {
 public:
  HeaderList() = default;
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList() {
    for (curl_slist* p = list_; p != nullptr; p = p->next)
      SecureWipe(p->data, std::strlen(p->data));
    curl_slist_free_all(list_);
  }
  bool Append(const char* line) {
    curl_slist* next = curl_slist_append(list_, line);
    if (next == nullptr) return false;
    list_ = next;
    return true;
  }
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

using EasyHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using UrlHandle = std::unique_ptr<CURLU, decltype(&curl_url_cleanup)>;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string PercentEncodeAll(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

struct UrlParts {
  std::string scheme, host;
  uint16_t port = 443;
};

StatusOr<UrlParts> PartsOf(const std::string& url) {
  UrlHandle h(curl_url(), &curl_url_cleanup);
  if (!h || curl_url_set(h.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return Status::InvalidArgument("not a valid URL");
  }
  UrlParts p;
  char* out = nullptr;
  if (curl_url_get(h.get(), CURLUPART_SCHEME, &out, 0) != CURLUE_OK) {
    return Status::InvalidArgument("URL has no scheme");
  }
  p.scheme = Lower(out);
  curl_free(out);
  if (curl_url_get(h.get(), CURLUPART_HOST, &out, 0) != CURLUE_OK) {
    return Status::InvalidArgument("URL has no host");
  }
  p.host = Lower(out);
  curl_free(out);
  if (curl_url_get(h.get(), CURLUPART_PORT, &out, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    p.port = static_cast<uint16_t>(std::atoi(out));
    curl_free(out);
  }
  return p;
}

// `location` resolved against `base`.
StatusOr<std::string> Resolve(const std::string& base, const std::string& location) {
  UrlHandle h(curl_url(), &curl_url_cleanup);
  if (!h || curl_url_set(h.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(h.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) {
    return Status::InvalidArgument("redirect Location is not a valid URL");
  }
  char* out = nullptr;
  if (curl_url_get(h.get(), CURLUPART_URL, &out, 0) != CURLUE_OK) {
    return Status::InvalidArgument("redirect Location is not a valid URL");
  }
  std::string s(out);
  curl_free(out);
  return s;
}

std::string WithQueryParam(const std::string& url, const std::string& name,
                           std::string_view value) {
  std::string out = url;
  out += url.find('?') == std::string::npos ? '?' : '&';
  out += name + "=" + PercentEncodeAll(value);
  return out;
}

}  // namespace

WipedStrings::~WipedStrings() {
  for (std::string& s : list_) SecureWipe(s.data(), s.size());
}

std::string& WipedStrings::Add(std::string s) {
  list_.push_back(std::move(s));
  return list_.back();
}

std::string FormUrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

Transport TransportOf(const HttpJob& job) {
  return {job.proxy_socket, job.ca_file, job.max_response_bytes, job.timeout_ms};
}

StatusOr<HttpResponse> SendOnce(const Transport& t, const std::string& method,
                                const std::string& url,
                                const std::vector<std::string>& header_lines,
                                const std::string& body) {
  HeaderList headers;
  for (const std::string& line : header_lines) {
    if (!headers.Append(line.c_str())) return Status::Internal("out of memory");
  }
  if (!headers.Append("Expect:")) return Status::Internal("out of memory");  // no 100-continue

  EasyHandle curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Status::Internal("curl_easy_init failed");
  CURL* h = curl.get();
  HttpResponse resp;
  BodySink sink{&resp.body, t.max_response_bytes};
  HeaderSink hsink{&resp.headers};
  char errbuf[CURL_ERROR_SIZE] = {};
  const std::string proxy = "socks5h://localhost" + t.proxy_socket;
  const auto timeout = static_cast<long>(t.timeout_ms);

  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode r) {
    if (rc == CURLE_OK) rc = r;
  };
  set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf));
  set(curl_easy_setopt(h, CURLOPT_URL, url.c_str()));
  set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https"));
  set(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https"));
  set(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L));  // redirects: PerformHttp decides
  set(curl_easy_setopt(h, CURLOPT_PROXY, proxy.c_str()));
  set(curl_easy_setopt(h, CURLOPT_NOPROXY, ""));  // never bypass the proxy
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L));
  set(curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
  if (t.ca_file) {
    set(curl_easy_setopt(h, CURLOPT_CAINFO, t.ca_file->c_str()));
    set(curl_easy_setopt(h, CURLOPT_CAPATH, nullptr));  // the bundle replaces the store
  }
  set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout));
  set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout));
  set(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(t.max_response_bytes)));
  set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody));
  set(curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink));
  set(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &WriteHeader));
  set(curl_easy_setopt(h, CURLOPT_HEADERDATA, &hsink));
  set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()));
  if (method == "HEAD") {
    set(curl_easy_setopt(h, CURLOPT_NOBODY, 1L));
  } else if (method != "GET") {
    if (!body.empty() || method == "POST") {
      set(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size())));
      set(curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data()));
    }
    set(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str()));
  }
  if (rc != CURLE_OK) {
    return Status::Internal(std::string("curl option rejected: ") + curl_easy_strerror(rc));
  }

  rc = curl_easy_perform(h);
  if (sink.overflow || rc == CURLE_FILESIZE_EXCEEDED) {
    SecureWipe(resp.body.data(), resp.body.size());
    return Status::PayloadTooLarge("response exceeds max_response_bytes (" +
                                   std::to_string(t.max_response_bytes) + ")");
  }
  if (rc != CURLE_OK) {
    SecureWipe(resp.body.data(), resp.body.size());
    std::string msg = std::string("request failed: ") + curl_easy_strerror(rc);
    if (errbuf[0] != '\0') msg += std::string(": ") + errbuf;
    return Status::Unavailable(msg);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_off_t us = 0;
  if (curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &us) == CURLE_OK) resp.connect_us = us;
  if (curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &us) == CURLE_OK) resp.tls_us = us;
  if (curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &us) == CURLE_OK) {
    resp.first_byte_us = us;
  }
  if (curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK) resp.total_us = us;
  const char* ct = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != nullptr) {
    resp.content_type = ct;
  }
  for (const auto& [name, value] : resp.headers) {
    if (Lower(name) == "location") resp.location = value;
  }
  return resp;
}

namespace {

// The form body (job.form) with credential fields filled in.
Status BuildFormBody(const HttpJob& job, const CredentialSet& creds, WipedStrings& wiped,
                     std::string& body, std::string& content_type) {
  const FormSpec& form = *job.form;
  std::string& out = wiped.Add(std::string());
  if (form.encoding == "urlencoded") {
    content_type = "application/x-www-form-urlencoded";
    for (const FormField& f : form.fields) {
      std::string_view v = f.value;
      if (!f.credential_field.empty()) {
        TOANI_ASSIGN_OR_RETURN(const SecretBytes* s, creds.Field(f.credential_field));
        v = s->UnsafeView();
      }
      if (!out.empty()) out += '&';
      out += FormUrlEncode(f.name) + "=" + FormUrlEncode(v);
    }
  } else {
    uint8_t rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    const std::string boundary = "toani-" + HexEncode(std::span<const uint8_t>(rnd, sizeof rnd));
    content_type = "multipart/form-data; boundary=" + boundary;
    for (const FormField& f : form.fields) {
      std::string_view v = f.value;
      if (!f.credential_field.empty()) {
        TOANI_ASSIGN_OR_RETURN(const SecretBytes* s, creds.Field(f.credential_field));
        v = s->UnsafeView();
      }
      if (v.find(boundary) != std::string_view::npos) {
        return Status::InvalidArgument("form value contains the multipart boundary");
      }
      out +=
          "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + f.name + "\"\r\n\r\n";
      out += v;
      out += "\r\n";
    }
    out += "--" + boundary + "--\r\n";
  }
  body = out;  // the copy is wiped by the caller's WipedStrings too
  return Status::Ok();
}

}  // namespace

StatusOr<HttpResponse> PerformHttp(const HttpJob& job, const CredentialSet& creds,
                                   const SecretBytes* bearer_override) {
  WipedStrings wiped;  // every string below that may hold the credential
  const Transport t = TransportOf(job);
  const Injection& in = job.inject;

  // The value to inject (none for kind "none").
  const SecretBytes* value = bearer_override;
  if (value == nullptr && in.kind != "none") {
    TOANI_ASSIGN_OR_RETURN(value, creds.Value(in.field));
    TOANI_RETURN_IF_ERROR(ValidateCredentialForHeader(*value));
  }
  std::vector<std::string> cred_headers;  // sent only to the original host and port
  std::string cred_url = job.url;
  if (in.kind == "header" || bearer_override != nullptr) {
    const std::string name =
        bearer_override != nullptr && in.kind != "header" ? "Authorization" : in.name;
    const std::string prefix =
        bearer_override != nullptr && in.kind != "header" ? "Bearer " : in.prefix;
    cred_headers.push_back(wiped.Add(name + ": " + prefix + std::string(value->UnsafeView())));
  } else if (in.kind == "query") {
    cred_url = wiped.Add(WithQueryParam(job.url, in.name, value->UnsafeView()));
  } else if (in.kind == "basic") {
    std::string user = in.username;
    if (!in.username_field.empty()) {
      TOANI_ASSIGN_OR_RETURN(const SecretBytes* u, creds.Field(in.username_field));
      user = std::string(u->UnsafeView());
      wiped.Add(user);
    }
    if (user.find(':') != std::string::npos) {
      return Status::InvalidArgument("basic auth user name contains ':'");
    }
    std::string& pair = wiped.Add(user + ":" + std::string(value->UnsafeView()));
    cred_headers.push_back(wiped.Add("Authorization: Basic " + Base64Encode(AsBytes(pair))));
  }
  struct WipeOnExit {
    std::vector<std::string>* v;
    std::string* s;
    ~WipeOnExit() {
      for (std::string& x : *v) SecureWipe(x.data(), x.size());
      SecureWipe(s->data(), s->size());
    }
  } wipe_on_exit{&cred_headers, &cred_url};

  std::vector<std::string> plain_headers;
  for (const auto& [name, v] : job.headers) {
    // curl drops "Name:" with an empty value; "Name;" sends it empty.
    plain_headers.push_back(v.empty() ? name + ";" : name + ": " + v);
  }
  std::string body = job.body;
  if (job.form) {
    std::string content_type;
    TOANI_RETURN_IF_ERROR(BuildFormBody(job, creds, wiped, body, content_type));
    plain_headers.push_back("Content-Type: " + content_type);
  }

  TOANI_ASSIGN_OR_RETURN(UrlParts origin, PartsOf(job.url));
  std::string method = job.method;
  std::string url = job.url;
  uint64_t redirects = 0;
  while (true) {
    TOANI_ASSIGN_OR_RETURN(UrlParts here, PartsOf(url));
    const bool same_origin = here.host == origin.host && here.port == origin.port;
    std::vector<std::string> lines = plain_headers;
    const std::string* send_url = &url;
    if (same_origin) {
      for (const std::string& h : cred_headers) lines.push_back(h);
      if (in.kind == "query" && bearer_override == nullptr && url == job.url) send_url = &cred_url;
    }
    StatusOr<HttpResponse> r = SendOnce(t, method, *send_url, lines, body);
    for (std::string& l : lines) SecureWipe(l.data(), l.size());
    if (!r.ok()) {
      SecureWipe(body.data(), body.size());
      return r.status();
    }
    const long s = r->status;
    const bool is_redirect = s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
    if (!is_redirect || job.max_redirects == 0 || r->location.empty()) {
      r->redirects = redirects;
      SecureWipe(body.data(), body.size());
      return r;
    }
    if (redirects >= job.max_redirects) {
      SecureWipe(body.data(), body.size());
      return Status::FailedPrecondition("too many redirects (more than " +
                                        std::to_string(job.max_redirects) + ")");
    }
    TOANI_ASSIGN_OR_RETURN(std::string next, Resolve(url, r->location));
    SecureWipe(r->body.data(), r->body.size());
    TOANI_ASSIGN_OR_RETURN(UrlParts np, PartsOf(next));
    if (np.scheme != "https") {
      return Status::PermissionDenied("redirect to a non-https URL refused");
    }
    if (!HostAllowed(job.allow, np.host, np.port)) {
      return Status::PermissionDenied("redirect to " + np.host + ":" + std::to_string(np.port) +
                                      " refused: not in the allow-list");
    }
    if (s == 303 || ((s == 301 || s == 302) && method == "POST")) {
      method = "GET";
      SecureWipe(body.data(), body.size());
      body.clear();
      std::erase_if(plain_headers,
                    [](const std::string& h) { return Lower(h).starts_with("content-type:"); });
    }
    url = std::move(next);
    ++redirects;
  }
}

}  // namespace toani
