// KeyService: everything toani-keyd does, callable in-process for tests. The
// keyd executable wraps it in a frame loop (main.cc). Nothing here ever returns
// key material or credential plaintext, except sealed to a recipient key.
//
// Walking-skeleton scope (issue 2): a dev root key (L0) in a 0600 file, L1 derived
// per tenant. Issue 3 replaces L0 custody with Shamir unseal and L1 with random,
// versioned, wrapped keys.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "common/secret.h"
#include "common/status.h"
#include "common/time.h"

namespace toani::keyd {

struct KeydOptions {
  std::string state_dir;    // where the dev root key lives (created 0700)
  bool dev = false;         // only dev mode exists in the skeleton
  std::string measurement;  // hex SHA-256 of the keyd executable (simulated attestation)
  Clock clock = SystemClock();
};

class KeyService {
 public:
  // Loads (or, in dev mode, creates) the root key. Fails if not in dev mode.
  static StatusOr<std::unique_ptr<KeyService>> Open(KeydOptions opts);

  // Dispatches one request (docs/formats.md §1) and returns its reply. Thread-safe.
  nlohmann::json Handle(const nlohmann::json& request);

  // The PASERK k4.lid of a v4.local key (exposed for the vector test).
  static StatusOr<std::string> K4Lid(const SecretBytes& key);

 private:
  KeyService(KeydOptions opts, SecretBytes root);
  StatusOr<nlohmann::json> StatusOp();
  StatusOr<nlohmann::json> ImportCredential(const nlohmann::json& req);
  StatusOr<nlohmann::json> MintToken(const nlohmann::json& req);
  StatusOr<nlohmann::json> VerifyTokenOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> ReleaseCredential(const nlohmann::json& req);

  StatusOr<nlohmann::json> VerifyToken(const std::string& tenant, const std::string& token);
  SecretBytes TenantKey(const std::string& tenant) const;
  SecretBytes TokenKey(const std::string& tenant) const;
  StatusOr<SecretBytes> OpenBlob(const std::string& tenant, const std::string& cred_id, int64_t version,
                                 const std::string& blob) const;

  KeydOptions opts_;
  SecretBytes root_;     // L0
  SecretBytes intake_sk_;  // X25519 secret key for credentials sealed by clients
  std::string intake_pk_b64_;
  std::mutex mu_;
  std::map<std::string, SysTime> released_jti_;  // jti → exp; a credential is released once per jti
};

}  // namespace toani::keyd
