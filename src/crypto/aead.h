// AES-256-GCM (OpenSSL EVP), misuse-resistant: the nonce is always a fresh random
// 96-bit value chosen here, never by the caller. With random nonces, NIST SP 800-38D
// limits one key to 2^32 messages; the key hierarchy (DESIGN.md §3) gives every
// encryption its own L3 key, far below that.
//
// Wire format: nonce (12) || ciphertext || tag (16).
// Thread-safe; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/encoding.h"
#include "common/secret.h"
#include "common/status.h"

namespace toani::crypto {

inline constexpr size_t kAesGcmKeySize = 32;
inline constexpr size_t kAesGcmNonceSize = 12;
inline constexpr size_t kAesGcmTagSize = 16;
inline constexpr size_t kAesGcmOverhead = kAesGcmNonceSize + kAesGcmTagSize;

// Returns InvalidArgument if key32 is not 32 bytes or the input is too large (> 2^30).
StatusOr<Bytes> AesGcmSeal(const SecretBytes& key32, std::span<const uint8_t> plaintext,
                           std::span<const uint8_t> ad);

// Returns the plaintext, or InvalidArgument("decryption failed") for every failure
// (wrong key size, short blob, wrong key, tampered nonce/ciphertext/tag, wrong ad), so
// the caller cannot learn which check failed.
StatusOr<SecretBytes> AesGcmOpen(const SecretBytes& key32, std::span<const uint8_t> blob,
                                 std::span<const uint8_t> ad);

}  // namespace toani::crypto
