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
// Appends the encoding of `in` to *out (one allocation when *out has the capacity).
void PublicBase64UrlEncodeAppend(std::span<const uint8_t> in, std::string* out);
// The encoded length of n bytes.
constexpr size_t PublicBase64UrlEncodedSize(size_t n) {
  return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

std::optional<Bytes> PublicBase64UrlDecodeStrict(std::string_view in);
// The same, writing into `out`, which must hold exactly the decoded length; returns
// false, leaving `out` unspecified, when the decoded length is not that or `in` is
// not strict base64url.
bool PublicBase64UrlDecodeStrictInto(std::string_view in, std::span<uint8_t> out);
// The decoded length of a string of n characters (meaningless when n % 4 == 1).
constexpr size_t PublicBase64UrlDecodedSize(size_t n) {
  return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

}  // namespace toani::crypto
