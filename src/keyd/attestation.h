// Attestation (DESIGN.md §3): an Attester produces evidence that binds keyd's public
// keys and a caller's nonce to a measurement of the code holding the keys; a Verifier
// checks evidence and returns normalized claims.
//
// Backends: `simulated` only. Its measurement is the SHA-256 of the keyd executable and
// its evidence is signed by an Ed25519 key keyd makes at start-up, so it proves
// integrity of the evidence and the key binding, NOT that a TEE holds the keys: anyone
// who controls the host can produce it. Verifiers therefore refuse it unless the
// caller allows simulated evidence. SGX DCAP and SEV-SNP are not built; their evidence
// is refused as unsupported. Evidence format: docs/formats.md §7.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "common/secret.h"
#include "common/status.h"

namespace toani::keyd {

struct AttestationClaims {
  std::string backend;      // "simulated"
  std::string measurement;  // hex SHA-256 of the keyd executable
  std::string signer;       // who vouches for the measurement
  bool debug = false;
  std::string tcb_status;  // "simulated" | "up-to-date" | ...
  bool simulated = true;
  std::string report_data;  // hex SHA-256 of RFC 8785 {"nonce","public_keys"}
  nlohmann::json public_keys =
      nlohmann::json::object();  // name → base64url key, bound by report_data
};

class Attester {
 public:
  virtual ~Attester() = default;
  // Evidence binding `public_keys` (name → base64url) and `nonce` (16..64 bytes).
  virtual StatusOr<nlohmann::json> Evidence(const nlohmann::json& public_keys,
                                            std::span<const uint8_t> nonce) = 0;
};

struct VerifyPolicy {
  bool allow_simulated = false;      // default: refuse simulated evidence
  std::string expected_measurement;  // empty: any measurement
};

class Verifier {
 public:
  virtual ~Verifier() = default;
  // Returns the claims, or PermissionDenied (simulated and not allowed; measurement
  // mismatch), Unauthenticated (bad signature, nonce or binding), InvalidArgument
  // (malformed), Unimplemented-as-FailedPrecondition (backend not built).
  virtual StatusOr<AttestationClaims> Verify(const nlohmann::json& evidence,
                                             std::span<const uint8_t> expected_nonce,
                                             const VerifyPolicy& policy) const = 0;
};

// The simulated backend. The signing key lives in SecretBytes for the process's life.
std::unique_ptr<Attester> MakeSimulatedAttester(std::string measurement);
// Verifies evidence of every known backend (today: simulated).
std::unique_ptr<Verifier> MakeVerifier();

// report_data = SHA-256(JCS({"nonce": b64url(nonce), "public_keys": public_keys})), hex.
std::string ReportData(const nlohmann::json& public_keys, std::span<const uint8_t> nonce);

}  // namespace toani::keyd
