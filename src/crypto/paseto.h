// PASETO v4.local (https://github.com/paseto-standard/paseto-spec, Version4.md):
// XChaCha20 + keyed BLAKE2b (encrypt-then-MAC), PAE over header, nonce, ciphertext,
// footer and implicit assertion; base64url without padding, decoded strictly.
//
// Only v4.local is implemented; every other header (v4.public, v3.local, ...) is refused.
// Thread-safe; no shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/secret.h"
#include "common/status.h"

namespace toani::crypto {

inline constexpr size_t kPasetoV4LocalKeySize = 32;
inline constexpr size_t kPasetoV4LocalNonceSize = 32;

// Encrypts `payload` with a fresh random nonce. The footer travels in clear (base64url)
// but is authenticated; the implicit assertion is authenticated but not carried.
// Returns InvalidArgument if key32 is not 32 bytes.
StatusOr<std::string> PasetoV4LocalEncrypt(const SecretBytes& key32, std::string_view payload,
                                           std::string_view footer,
                                           std::string_view implicit_assertion);

// FOR TESTS ONLY (official vectors): as above with a caller-chosen nonce. Reusing a nonce
// under one key reveals plaintext XORs; production code must call PasetoV4LocalEncrypt.
// Returns InvalidArgument if key32 or nonce32 is not 32 bytes.
StatusOr<std::string> PasetoV4LocalEncryptWithNonce(const SecretBytes& key32,
                                                    std::string_view payload,
                                                    std::string_view footer,
                                                    std::string_view implicit_assertion,
                                                    std::span<const uint8_t> nonce32);

struct PasetoMessage {
  std::string payload;
  std::string footer;  // authenticated; empty when the token has none
};

// Verifies and decrypts a v4.local token. Returns InvalidArgument if key32 is not 32
// bytes; otherwise every failure (wrong header, malformed or non-canonical base64url,
// token too short, empty footer segment, bad tag, wrong key or implicit assertion)
// is the single error Unauthenticated("invalid token").
StatusOr<PasetoMessage> PasetoV4LocalDecrypt(const SecretBytes& key32, std::string_view token,
                                             std::string_view implicit_assertion);

// The footer of a v4.local token, decoded but NOT verified: use it only to choose a key
// (e.g. a k4.lid key id), then call PasetoV4LocalDecrypt, which authenticates it.
// Returns "" for a token without footer; InvalidArgument for a malformed token.
StatusOr<std::string> PasetoUntrustedFooter(std::string_view token);

}  // namespace toani::crypto
