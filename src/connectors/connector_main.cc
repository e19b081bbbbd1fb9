// toani-connector: runs inside one fresh sandbox per execution and speaks the protocol
// of docs/connector-protocol.md on stdin/stdout: hello → job → result, then exits.
// The credential exists in plaintext only in this process, in wiped memory.
#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/encoding.h"
#include "common/secret.h"
#include "common/status.h"
#include "connectors/browser.h"
#include "connectors/credential_set.h"
#include "connectors/http_fetch.h"
#include "connectors/http_job.h"
#include "connectors/oauth.h"
#include "connectors/scrub.h"

namespace toani {
namespace {

using nlohmann::json;

// Where the server binds its connector CA file, if it has one (sandbox_pool.cc).
constexpr const char* kWarmUpCaFile = "/run/toani/ca.pem";

bool WriteAll(std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool WriteMessage(const json& msg) {
  // Inputs are valid UTF-8 by construction; replace rather than throw regardless.
  return WriteAll(msg.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

// Reads one line (without the '\n') of at most `max` bytes from stdin, in large reads
// (the job is the only line the server sends; anything after its '\n' is ignored). The
// buffer is wiped before it is freed: the job holds the sealed credential.
StatusOr<std::string> ReadLine(size_t max) {
  std::string line;
  std::string chunk(64 << 10, '\0');
  struct Wipe {
    std::string* s;
    ~Wipe() { SecureWipe(s->data(), s->size()); }
  } wipe{&chunk};
  while (true) {
    const ssize_t n = ::read(STDIN_FILENO, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable("reading stdin failed");
    if (n == 0) return Status::InvalidArgument("stdin closed before a complete job line");
    const std::string_view got(chunk.data(), static_cast<size_t>(n));
    const size_t nl = got.find('\n');
    const size_t take = nl == std::string_view::npos ? got.size() : nl;
    if (line.size() + take > max) {
      SecureWipe(line.data(), line.size());
      return Status::InvalidArgument("job line exceeds 1 MiB");
    }
    if (line.capacity() < line.size() + take) {
      // Grow by hand so that no unwiped copy of a partial job is left in freed memory.
      std::string bigger;
      bigger.reserve(std::max(line.size() + take, 2 * line.capacity()));
      bigger.assign(line);
      SecureWipe(line.data(), line.size());
      line.swap(bigger);
    }
    line.append(got.substr(0, take));
    if (nl != std::string_view::npos) return line;
  }
}

// The first TLS connection of a process costs several ms more than the next ones
// (OpenSSL fetches and caches its algorithm implementations and decoders on first use).
// Done before the hello, so that in a pre-started sandbox it happens while the sandbox
// waits for its job rather than during the execution: a TLS context with the CA file
// the server binds into the sandbox (docs/connector-protocol.md §6.5), an X25519 key
// share and a P-256 signature and its verification (the handshake's primitives).
void WarmUpTls() {
  if (SSL_CTX* ctx = SSL_CTX_new(TLS_client_method())) {
    if (::access(kWarmUpCaFile, R_OK) == 0)
      SSL_CTX_load_verify_locations(ctx, kWarmUpCaFile, nullptr);
    if (SSL* ssl = SSL_new(ctx)) SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  if (EVP_PKEY* x = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519")) EVP_PKEY_free(x);
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (ec == nullptr) return;
  static constexpr unsigned char kMsg[] = "toani warm-up";
  unsigned char sig[128];
  size_t sig_len = sizeof sig;
  if (EVP_MD_CTX* m = EVP_MD_CTX_new()) {
    if (EVP_DigestSignInit(m, nullptr, EVP_sha256(), nullptr, ec) == 1 &&
        EVP_DigestSign(m, sig, &sig_len, kMsg, sizeof kMsg) == 1) {
      EVP_MD_CTX_reset(m);
      if (EVP_DigestVerifyInit(m, nullptr, EVP_sha256(), nullptr, ec) == 1) {
        (void)EVP_DigestVerify(m, sig, sig_len, kMsg, sizeof kMsg);
      }
    }
    EVP_MD_CTX_free(m);
  }
  EVP_PKEY_free(ec);
  ERR_clear_error();
}

struct Outcome {
  Outcome() = default;
  explicit Outcome(Status s) : status(std::move(s)) {}
  Status status;
  HttpResponse response;
  std::string resealed_credential;   // oauth: rotated refresh token, sealed to keyd
  json extracted = json::object();   // browser: name -> text
  json screenshots = json::array();  // browser: [{name, png_base64}]
};

// Everything between reading the job and having a response; the credential lives only
// in `creds`, which the caller wipes.
Outcome RunJob(const SecretBytes& secret_key, const Bytes& public_key, CredentialSet& creds,
               std::chrono::steady_clock::time_point* job_read) {
  Outcome out;
  StatusOr<std::string> line = ReadLine(kMaxJobLineBytes);
  *job_read = std::chrono::steady_clock::now();
  if (!line.ok()) return Outcome(line.status());
  StatusOr<HttpJob> job = ParseHttpJob(*line);
  SecureWipe(line->data(), line->size());
  if (!job.ok()) return Outcome(job.status());
  const Bytes& ct = job->sealed_credential;
  if (ct.size() <= crypto_box_SEALBYTES)
    return Outcome(Status::InvalidArgument("sealed_credential too short"));
  SecretBytes plain(ct.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(plain.UnsafeMutableData(), ct.data(), ct.size(), public_key.data(),
                           secret_key.UnsafeBytes().data()) != 0) {
    return Outcome(
        Status::InvalidArgument("sealed_credential does not open with this sandbox's key"));
  }
  if (plain.empty() || plain.size() > 65536) {
    return Outcome(Status::InvalidArgument("credential must be 1..65536 bytes"));
  }
  creds = CredentialSet(std::move(plain));
  if (job->connector == "oauth") {
    OauthOutcome o = PerformOauth(*job, creds);
    out.status = o.status;
    out.response = std::move(o.response);
    out.resealed_credential = std::move(o.resealed_credential);
    return out;
  }
  if (job->connector == "browser") {
    BrowserOutcome b = RunBrowser(*job, creds);
    out.status = b.status;
    out.response.status = b.status.ok() ? 200 : 0;
    out.response.content_type = "application/json";
    out.extracted = std::move(b.extracted);
    out.screenshots = std::move(b.screenshots);
    return out;
  }
  StatusOr<HttpResponse> resp = PerformHttp(*job, creds);
  if (!resp.ok()) return Outcome(resp.status());
  out.response = std::move(resp).value();
  return out;
}

int Main() {
  // Not dumpable: no core, no ptrace by anything else running as this uid.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  if (sodium_init() < 0) {
    std::fputs("toani-connector: sodium_init failed\n", stderr);
    return 1;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fputs("toani-connector: curl_global_init failed\n", stderr);
    return 1;
  }

  Bytes public_key(crypto_box_PUBLICKEYBYTES);
  CredentialSet creds;
  Outcome outcome;
  using Clock = std::chrono::steady_clock;
  Clock::time_point job_read{};
  {
    SecretBytes secret_key(crypto_box_SECRETKEYBYTES);
    crypto_box_keypair(public_key.data(), secret_key.UnsafeMutableData());
    WarmUpTls();
    if (!WriteMessage({{"type", "hello"}, {"public_key", Base64UrlEncode(public_key)}})) return 2;
    outcome = RunJob(secret_key, public_key, creds, &job_read);
  }  // secret key wiped here
  const Clock::time_point ran = Clock::now();

  // Everything below leaves the sandbox: scrubbed against every secret of the run.
  auto clean = [&](std::string_view s) { return MakeValidUtf8(creds.Scrub(s)); };
  json result = {{"type", "result"}};
  if (!outcome.resealed_credential.empty()) {
    result["resealed_credential"] = outcome.resealed_credential;  // ciphertext for keyd only
  }
  if (outcome.status.ok()) {
    std::string& raw = outcome.response.body;
    std::string body = clean(raw);
    SecureWipe(raw.data(), raw.size());
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const uint8_t*>(body.data()), body.size());
    result["ok"] = true;
    result["status"] = outcome.response.status;
    result["content_type"] = clean(outcome.response.content_type);
    json headers = json::array();
    for (auto& [name, value] : outcome.response.headers) {
      headers.push_back({clean(name), clean(value)});
      SecureWipe(value.data(), value.size());
    }
    result["headers"] = std::move(headers);
    result["body"] = std::move(body);
    result["body_sha256"] = HexEncode(digest);
    result["redirects"] = outcome.response.redirects;
    if (!outcome.extracted.empty()) {
      for (auto& [k, v] : outcome.extracted.items()) v = clean(v.get<std::string>());
      result["extracted"] = std::move(outcome.extracted);
    }
    if (!outcome.screenshots.empty()) result["screenshots"] = std::move(outcome.screenshots);
  } else {
    result["ok"] = false;
    result["error"] = clean(outcome.status.message());
  }
  creds = CredentialSet();  // wipe before the result leaves
  // Where the connector's time went (durations only; docs/connector-protocol.md §3).
  auto us = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  };
  const HttpResponse& r = outcome.response;
  result["timing_us"] = {{"run", us(ran - job_read)},     {"scrub", us(Clock::now() - ran)},
                         {"connect", r.connect_us},       {"tls", r.tls_us},
                         {"first_byte", r.first_byte_us}, {"request", r.total_us}};
  curl_global_cleanup();
  if (!WriteMessage(result)) return 2;
  return outcome.status.ok() ? 0 : 1;
}

}  // namespace
}  // namespace toani

int main() { return toani::Main(); }
