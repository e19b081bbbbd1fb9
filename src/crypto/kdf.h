// Key derivation and MAC: HKDF-SHA256 (RFC 5869, OpenSSL EVP_KDF) and HMAC-SHA256
// (libsodium). Pure functions, thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/secret.h"

namespace toani::crypto {

// HKDF-SHA256 extract-and-expand. An empty salt means HashLen zero bytes (RFC 5869).
// Precondition (TOANI_CHECK): 1 <= out_len <= 255 * 32; ikm non-empty. These are fixed
// by the calling protocol, never by untrusted input, so a violation is a bug.
SecretBytes HkdfSha256(const SecretBytes& ikm, std::span<const uint8_t> salt,
                       std::span<const uint8_t> info, size_t out_len);

// HMAC-SHA256 with a key of any length.
std::array<uint8_t, 32> HmacSha256(const SecretBytes& key, std::span<const uint8_t> msg);

}  // namespace toani::crypto
