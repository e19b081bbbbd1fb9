// PASETO v4.public (Version4.md "Sign"/"Verify"): Ed25519 (libsodium) over
// PAE(h, m, f, i); token = "v4.public." || base64url(m || sig) [|| "." || base64url(f)].
// This is how identity-proof issuers sign (DESIGN.md §5); keyd only verifies.
// Thread-safe; no shared state.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/secret.h"
#include "common/status.h"
#include "crypto/paseto.h"

namespace toani::crypto {

// sk64: libsodium Ed25519 secret key (seed || public key). InvalidArgument otherwise.
StatusOr<std::string> PasetoV4PublicSign(const SecretBytes& sk64, std::string_view payload,
                                         std::string_view footer,
                                         std::string_view implicit_assertion);

// pk32: Ed25519 public key. InvalidArgument if it is not 32 bytes; every other failure
// (wrong header, non-canonical base64url, short body, empty footer segment, bad
// signature) is the single error Unauthenticated("invalid token").
StatusOr<PasetoMessage> PasetoV4PublicVerify(std::span<const uint8_t> pk32, std::string_view token,
                                             std::string_view implicit_assertion);

}  // namespace toani::crypto
