// A fast, strict base64url codec (RFC 4648 §5, no padding) for PUBLIC data only:
// PASETO token bodies (nonce, ciphertext, tag, signatures) and footers. It is
// table-driven, so its timing depends on the data — never use it for keys or
// plaintext (common/encoding.h wraps libsodium's constant-time codec for those).
// Strict: refuses '=', characters outside the alphabet, a length of 1 mod 4, and
// non-zero trailing bits, so every byte string has exactly one accepted spelling.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/encoding.h"

namespace toani::crypto {

std::string PublicBase64UrlEncode(std::span<const uint8_t> in);
std::optional<Bytes> PublicBase64UrlDecodeStrict(std::string_view in);

}  // namespace toani::crypto
