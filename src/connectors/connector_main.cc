// toani-connector: runs inside one fresh sandbox per execution and speaks the protocol
// of docs/connector-protocol.md on stdin/stdout: hello → job → result, then exits.
// The credential exists in plaintext only in this process, in wiped memory.
#include <curl/curl.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "common/encoding.h"
#include "common/secret.h"
#include "common/status.h"
#include "connectors/http_fetch.h"
#include "connectors/http_job.h"
#include "connectors/scrub.h"

namespace toani {
namespace {

using nlohmann::json;

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

// Reads one line (without the '\n') of at most `max` bytes from stdin.
StatusOr<std::string> ReadLine(size_t max) {
  std::string line;
  char c = 0;
  while (true) {
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable("reading stdin failed");
    if (n == 0) return Status::InvalidArgument("stdin closed before a complete job line");
    if (c == '\n') return line;
    if (line.size() >= max) return Status::InvalidArgument("job line exceeds 1 MiB");
    line.push_back(c);
  }
}

struct Outcome {
  Status status;
  HttpResponse response;
};

// Everything between reading the job and having a response; the credential lives only
// inside this function's scope.
Outcome RunJob(const SecretBytes& secret_key, const Bytes& public_key, SecretBytes& credential) {
  Outcome out;
  StatusOr<std::string> line = ReadLine(kMaxJobLineBytes);
  if (!line.ok()) return {line.status(), {}};
  StatusOr<HttpJob> job = ParseHttpJob(*line);
  if (!job.ok()) return {job.status(), {}};
  const Bytes& ct = job->sealed_credential;
  if (ct.size() <= crypto_box_SEALBYTES) {
    return {Status::InvalidArgument("sealed_credential too short"), {}};
  }
  credential = SecretBytes(ct.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(credential.UnsafeMutableData(), ct.data(), ct.size(), public_key.data(),
                           secret_key.UnsafeBytes().data()) != 0) {
    credential = SecretBytes();
    return {Status::InvalidArgument("sealed_credential does not open with this sandbox's key"), {}};
  }
  if (Status st = ValidateCredentialForHeader(credential); !st.ok()) return {st, {}};
  StatusOr<HttpResponse> resp = PerformHttp(*job, credential);
  if (!resp.ok()) return {resp.status(), {}};
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
  SecretBytes credential;
  Outcome outcome;
  {
    SecretBytes secret_key(crypto_box_SECRETKEYBYTES);
    crypto_box_keypair(public_key.data(), secret_key.UnsafeMutableData());
    if (!WriteMessage({{"type", "hello"}, {"public_key", Base64UrlEncode(public_key)}})) return 2;
    outcome = RunJob(secret_key, public_key, credential);
  }  // secret key wiped here

  json result = {{"type", "result"}};
  if (outcome.status.ok()) {
    std::string& raw = outcome.response.body;
    std::string body = MakeValidUtf8(ScrubSecret(raw, credential));
    SecureWipe(raw.data(), raw.size());
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const uint8_t*>(body.data()), body.size());
    result["ok"] = true;
    result["status"] = outcome.response.status;
    result["content_type"] = MakeValidUtf8(ScrubSecret(outcome.response.content_type, credential));
    result["body"] = std::move(body);
    result["body_sha256"] = HexEncode(digest);
  } else {
    result["ok"] = false;
    result["error"] = MakeValidUtf8(ScrubSecret(outcome.status.message(), credential));
  }
  credential = SecretBytes();  // wipe before the result leaves
  curl_global_cleanup();
  if (!WriteMessage(result)) return 2;
  return outcome.status.ok() ? 0 : 1;
}

}  // namespace
}  // namespace toani

int main() { return toani::Main(); }
