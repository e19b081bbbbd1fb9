// Byte encodings. Decoders are strict: base64url without padding and without
// non-zero trailing bits (PASETO); hex lowercase or uppercase, even length.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace toani {

using Bytes = std::vector<uint8_t>;

std::string HexEncode(std::span<const uint8_t> b);
StatusOr<Bytes> HexDecode(std::string_view s);
std::string Base64UrlEncode(std::span<const uint8_t> b);  // no padding
StatusOr<Bytes> Base64UrlDecodeStrict(
    std::string_view s);                               // refuses padding, bad chars, trailing bits
std::string Base64Encode(std::span<const uint8_t> b);  // standard, padded
StatusOr<Bytes> Base64Decode(std::string_view s);      // standard, padded, strict

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string ToString(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace toani
