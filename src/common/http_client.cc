#include "common/http_client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace toani {
namespace {

struct EasyFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// curl_global_init is not thread-safe in every build; do it exactly once.
Status GlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK)
    return Status::Unavailable(std::string("curl init: ") + curl_easy_strerror(rc));
  return Status::Ok();
}

struct Sink {
  std::string* body;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t n = size * nmemb;
  if (sink->body->size() + n > kMaxClientResponseBytes) {
    sink->overflow = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

bool IsMethodToken(std::string_view m) {
  if (m.empty() || m.size() > 16) return false;
  for (char c : m) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

bool HasControl(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

StatusOr<ClientResponse> HttpsCall(
    std::string_view method, const std::string& url, std::string_view body,
    std::string_view content_type, const ClientTls& tls, std::chrono::milliseconds timeout,
    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  if (!IsMethodToken(method)) return Status::InvalidArgument("bad HTTP method");
  if (!url.starts_with("https://") || HasControl(url)) {
    return Status::InvalidArgument("URL must be https://");
  }
  if (HasControl(content_type)) return Status::InvalidArgument("bad content type");
  TOANI_RETURN_IF_ERROR(GlobalInit());

  std::unique_ptr<CURL, EasyFree> curl(curl_easy_init());
  if (!curl) return Status::Unavailable("curl_easy_init failed");
  CURL* c = curl.get();

  ClientResponse response;
  Sink sink{&response.body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::string method_str(method);
  std::unique_ptr<curl_slist, SlistFree> headers;
  auto add_header = [&](const std::string& h) {
    curl_slist* l = curl_slist_append(headers.get(), h.c_str());
    if (l != nullptr) {
      (void)headers.release();  // now owned by the new list head
      headers.reset(l);
    }
    return l != nullptr;
  };
  // curl would otherwise wait up to a second for "100 Continue" on large bodies.
  if (!add_header("Expect:")) return Status::Unavailable("curl_slist_append failed");
  if (!content_type.empty() && !add_header("Content-Type: " + std::string(content_type))) {
    return Status::Unavailable("curl_slist_append failed");
  }
  for (const auto& [name, value] : extra_headers) {
    if (name.empty() || HasControl(name) || HasControl(value) ||
        name.find_first_of(": ") != std::string::npos) {
      return Status::InvalidArgument("bad request header");
    }
    if (!add_header(name + ": " + value)) return Status::Unavailable("curl_slist_append failed");
  }

  bool ok = true;
  auto set = [&](CURLoption opt, auto value) {
    ok = ok && curl_easy_setopt(c, opt, value) == CURLE_OK;
  };
  set(CURLOPT_URL, url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_NOPROXY, "*");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_ERRORBUFFER, errbuf);
  set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_3));
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!tls.ca_file.empty()) {
    set(CURLOPT_CAINFO, tls.ca_file.c_str());
    set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));  // pin to ca_file only
  }
  if (!tls.cert_file.empty()) {
    set(CURLOPT_SSLCERT, tls.cert_file.c_str());
    set(CURLOPT_SSLCERTTYPE, "PEM");
    set(CURLOPT_SSLKEY, (tls.key_file.empty() ? tls.cert_file : tls.key_file).c_str());
    set(CURLOPT_SSLKEYTYPE, "PEM");
  }
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
  set(CURLOPT_WRITEFUNCTION, &WriteBody);
  set(CURLOPT_WRITEDATA, &sink);
  set(CURLOPT_HTTPHEADER, headers.get());
  if (method == "GET" && body.empty()) {
    set(CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else {
    set(CURLOPT_CUSTOMREQUEST, method_str.c_str());
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      set(CURLOPT_POSTFIELDS, body.empty() ? "" : body.data());
    }
  }
  if (!ok) return Status::Unavailable("curl_easy_setopt failed");

  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (sink.overflow) return Status::Unavailable("response body exceeds limit");
    std::string msg = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return Status::Unavailable("https call to " + url + " failed: " + msg);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  char* ct = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != nullptr) {
    response.content_type = ct;
  }
  return response;
}

}  // namespace toani
