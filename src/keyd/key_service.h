// KeyService: everything toani-keyd does, callable in-process for tests. The keyd
// executable wraps it in a frame loop (main.cc). Nothing here ever returns key
// material, shares or credential plaintext except sealed to a recipient's X25519 key.
//
// State: sealed (no L0) until the root key is available — at once in dev mode (key
// file), after `operator.unseal` reaches the threshold in Shamir mode. While sealed
// only status, attestation, init, unseal and rekey answer; every other op is
// Unavailable("keyd is sealed ..."). Wire protocol: docs/formats.md §1.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/secret.h"
#include "common/status.h"
#include "common/time.h"
#include "keyd/attestation.h"
#include "keyd/audit_signer.h"
#include "keyd/keyring.h"
#include "keyd/root_custody.h"
#include "keyd/token_frame.h"

namespace toani::keyd {

// The claims of an Action Token (formats.md §4) in their RFC 8785 form, written member by
// member in the canonical (sorted) order: the bytes TryCanonicalizeJson gives for the
// same object, without building it (KeyServiceTest checks that they are).
// InvalidArgument for a string that is not UTF-8.
StatusOr<std::string> CanonicalClaims(const MintRequest& r, const std::string& jti,
                                      const std::string& iat, const std::string& exp,
                                      const std::string& measurement);

struct KeydOptions {
  std::string state_dir;    // dev-root.key or root.json, and keyring.json (created 0700)
  bool dev = false;         // dev: L0 from a key file; otherwise Shamir shares
  std::string measurement;  // hex SHA-256 of the keyd executable (simulated attestation)
  Clock clock = SystemClock();
};

class KeyService {
 public:
  // Dev: loads or creates the key file and unseals. Shamir: starts sealed.
  static StatusOr<std::unique_ptr<KeyService>> Open(KeydOptions opts);

  // Dispatches one request (docs/formats.md §1) and returns its reply; never throws,
  // never aborts on bad input. Thread-safe (one op at a time).
  nlohmann::json Handle(const nlohmann::json& request);
  // Dispatches one binary frame (docs/formats.md §1.1–§1.3: its first byte is the type)
  // and returns the reply payload: a binary reply, or the JSON error object, dumped.
  std::string HandleBinary(std::string_view frame);

  // The PASERK k4.lid of a v4.local key (exposed for the vector test).
  static StatusOr<std::string> K4Lid(const SecretBytes& key);

 private:
  using Op = StatusOr<nlohmann::json> (KeyService::*)(const nlohmann::json&);
  struct OpEntry {
    const char* name;
    Op fn;
    bool needs_root;  // refused while sealed
  };
  static const OpEntry kOps[];

  KeyService(KeydOptions opts, RootCustody root);
  Status AfterUnseal();  // loads the keyring once L0 is present

  // key_service.cc: state, custody and attestation
  StatusOr<nlohmann::json> StatusOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> InitOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> UnsealOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> RekeyOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> AttestOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> RotateOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> AuditOp(const nlohmann::json& req);  // audit_signer.cc
  StatusOr<SecretBytes> OpenSealed(const std::string& b64, size_t max_plain) const;
  StatusOr<nlohmann::json> SealShares(const std::vector<SecretBytes>& shares,
                                      const nlohmann::json& req) const;
  // credential_ops.cc: credentials and tokens
  StatusOr<nlohmann::json> ImportCredential(const nlohmann::json& req);
  StatusOr<nlohmann::json> RewrapCredential(const nlohmann::json& req);
  StatusOr<nlohmann::json> MintToken(const nlohmann::json& req);  // the JSON op
  StatusOr<MintedToken> Mint(const MintRequest& req);             // both forms of token.mint
  StatusOr<nlohmann::json> VerifyTokenOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> ReleaseCredential(const nlohmann::json& req);
  StatusOr<nlohmann::json> VerifyWebhookOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> SignApprovalWebhookOp(const nlohmann::json& req);
  StatusOr<nlohmann::json> VerifyToken(const std::string& tenant, const std::string& token);
  StatusOr<SecretBytes> OpenBlob(const std::string& tenant, const std::string& cred_id,
                                 int64_t version, const std::string& blob) const;
  StatusOr<nlohmann::json> SealBlob(const std::string& tenant, const std::string& cred_id,
                                    int64_t version, const SecretBytes& plain);

  KeydOptions opts_;
  RootCustody root_;
  std::optional<Keyring> keyring_;  // present once unsealed
  std::unique_ptr<Attester> attester_;
  SecretBytes intake_sk_;  // X25519, made at start: clients seal credentials and shares to it
  std::string intake_pk_b64_;
  std::mutex mu_;
  std::map<std::string, SysTime> released_jti_;  // jti → exp: one release per jti
  std::unique_ptr<AuditSigner> audit_signer_;    // audit_signer.cc; made at unseal
};

// Helpers shared by the op files.
StatusOr<std::string> ReqStr(const nlohmann::json& j, const char* key, size_t max_len = 4096);
StatusOr<int64_t> ReqInt(const nlohmann::json& j, const char* key);

}  // namespace toani::keyd
