// Signed policies (docs/formats.md §8): a policy document is signed with Ed25519
// over its RFC 8785 canonical form by policy-admin keys that are registered with the
// server. Keys are PASERK strings: "k4.secret.…" (64-byte libsodium secret key),
// "k4.public.…" (32 bytes), and key ids "k4.pid.…". Pure functions, thread-safe.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/secret.h"
#include "common/status.h"

namespace toani::policy {

struct PolicyKeyPair {
  SecretBytes secret;      // PASERK "k4.secret.…" text (a secret: wipe, never log)
  std::string public_key;  // "k4.public.…"
  std::string key_id;      // "k4.pid.…"
};
PolicyKeyPair GeneratePolicyKey();

// "k4.public.…" → 32 bytes; InvalidArgument otherwise.
StatusOr<std::array<uint8_t, 32>> ParsePublicKey(const std::string& paserk);
// PASERK k4.pid of a public key: "k4.pid." + base64url(BLAKE2b-264("k4.pid." || paserk)).
std::string PublicKeyId(const std::array<uint8_t, 32>& pk);

struct PolicySignature {
  std::string key_id;  // k4.pid
  std::string sig;     // base64url of 64 bytes
};

// A signed policy as the server receives it:
// {"policy": {…}, "signatures": [{"keyid": "k4.pid.…", "sig": "…"}]}.
struct SignedPolicy {
  nlohmann::json policy;
  std::string canonical;  // RFC 8785 form of `policy`: the signed bytes
  std::vector<PolicySignature> signatures;
};

// InvalidArgument for a bare (unsigned) document, a malformed envelope, or a policy
// that has no canonical form. Signatures are not verified here.
StatusOr<SignedPolicy> ParseSignedPolicy(const nlohmann::json& envelope);

// Adds a signature by `secret` (PASERK k4.secret text) to `doc_or_envelope` (a bare
// policy document or an envelope already signed by others). InvalidArgument for a
// malformed key or document.
StatusOr<nlohmann::json> SignPolicy(const nlohmann::json& doc_or_envelope,
                                    const SecretBytes& secret);

// Unauthenticated unless `sig` is a valid Ed25519 signature over `canonical` by `pk`.
Status VerifyPolicySignature(const std::string& canonical, const PolicySignature& sig,
                             const std::array<uint8_t, 32>& pk);

}  // namespace toani::policy
