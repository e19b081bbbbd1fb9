#include "connectors/http_fetch.h"

#include <curl/curl.h>

#include <cstring>
#include <memory>

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

// Owns the header list; wipes every entry (one carries the credential) before freeing.
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

}  // namespace

StatusOr<HttpResponse> PerformHttp(const HttpJob& job, const SecretBytes& credential) {
  // The header list must outlive the easy handle that points at it.
  HeaderList headers;
  for (const auto& [name, value] : job.headers) {
    // curl drops "Name:" with an empty value; "Name;" sends it empty.
    const std::string line = value.empty() ? name + ";" : name + ": " + value;
    if (!headers.Append(line.c_str())) return Status::Internal("out of memory");
  }
  if (!headers.Append("Expect:")) return Status::Internal("out of memory");  // no 100-continue
  {
    const std::string head = job.inject_name + ": " + job.inject_prefix;
    SecretBytes line(head.size() + credential.size() + 1);  // zero-filled: NUL-terminated
    std::memcpy(line.UnsafeMutableData(), head.data(), head.size());
    std::memcpy(line.UnsafeMutableData() + head.size(), credential.UnsafeBytes().data(),
                credential.size());
    // curl_slist_append copies into malloc'd memory that ~HeaderList wipes.
    if (!headers.Append(reinterpret_cast<const char*>(line.UnsafeBytes().data()))) {
      return Status::Internal("out of memory");
    }
  }

  EasyHandle curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Status::Internal("curl_easy_init failed");
  CURL* h = curl.get();
  HttpResponse resp;
  BodySink sink{&resp.body, job.max_response_bytes};
  char errbuf[CURL_ERROR_SIZE] = {};
  const std::string proxy = "socks5h://localhost" + job.proxy_socket;
  const auto timeout = static_cast<long>(job.timeout_ms);

  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode r) {
    if (rc == CURLE_OK) rc = r;
  };
  set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf));
  set(curl_easy_setopt(h, CURLOPT_URL, job.url.c_str()));
  set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https"));
  set(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https"));
  set(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L));
  set(curl_easy_setopt(h, CURLOPT_PROXY, proxy.c_str()));
  set(curl_easy_setopt(h, CURLOPT_NOPROXY, ""));  // never bypass the proxy
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L));
  set(curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2)));
  if (job.ca_file) {
    set(curl_easy_setopt(h, CURLOPT_CAINFO, job.ca_file->c_str()));
    set(curl_easy_setopt(h, CURLOPT_CAPATH, nullptr));  // the bundle replaces the store
  }
  set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout));
  set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout));
  set(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(job.max_response_bytes)));
  set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody));
  set(curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink));
  set(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()));
  if (job.method == "HEAD") {
    set(curl_easy_setopt(h, CURLOPT_NOBODY, 1L));
  } else if (job.method != "GET") {
    if (!job.body.empty() || job.method == "POST") {
      set(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                           static_cast<curl_off_t>(job.body.size())));
      set(curl_easy_setopt(h, CURLOPT_POSTFIELDS, job.body.data()));
    }
    set(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, job.method.c_str()));
  }
  if (rc != CURLE_OK) {
    return Status::Internal(std::string("curl option rejected: ") + curl_easy_strerror(rc));
  }

  rc = curl_easy_perform(h);
  if (sink.overflow || rc == CURLE_FILESIZE_EXCEEDED) {
    SecureWipe(resp.body.data(), resp.body.size());
    return Status::PayloadTooLarge("response exceeds max_response_bytes (" +
                                   std::to_string(job.max_response_bytes) + ")");
  }
  if (rc != CURLE_OK) {
    SecureWipe(resp.body.data(), resp.body.size());
    std::string msg = std::string("request failed: ") + curl_easy_strerror(rc);
    if (errbuf[0] != '\0') msg += std::string(": ") + errbuf;
    return Status::Unavailable(msg);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  const char* ct = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != nullptr) {
    resp.content_type = ct;
  }
  return resp;
}

}  // namespace toani
