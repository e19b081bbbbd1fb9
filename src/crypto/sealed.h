// X25519 sealed boxes (libsodium crypto_box_seal): anonymous public-key encryption.
// The sender needs only the recipient's public key; the recipient learns nothing about
// the sender. Used to hand credentials to keyd and to a sandbox's ephemeral key.
// Thread-safe; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/encoding.h"
#include "common/secret.h"
#include "common/status.h"

namespace toani::crypto {

inline constexpr size_t kBoxPublicKeySize = 32;
inline constexpr size_t kBoxSecretKeySize = 32;
inline constexpr size_t kSealOverhead = 48;  // ephemeral pk (32) + MAC (16)

struct BoxKeyPair {
  Bytes public_key;        // 32 bytes
  SecretBytes secret_key;  // 32 bytes
};

BoxKeyPair BoxKeyPairGenerate();

// Seals `plaintext` to `pk`. Returns InvalidArgument if pk is not 32 bytes or is a
// degenerate (low-order) point; pk usually comes from another process, so this is not
// a TOANI_CHECK.
StatusOr<Bytes> SealToPublicKey(std::span<const uint8_t> pk, std::span<const uint8_t> plaintext);

// Opens a sealed box addressed to `kp`. Every failure (short input, wrong recipient,
// tampering, malformed key pair) is the one error InvalidArgument("decryption failed").
StatusOr<SecretBytes> OpenSealed(const BoxKeyPair& kp, std::span<const uint8_t> sealed);

}  // namespace toani::crypto
