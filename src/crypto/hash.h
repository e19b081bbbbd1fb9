// SHA-256 (libsodium). Pure functions, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace toani::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::span<const uint8_t> data);
// Lowercase hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);

}  // namespace toani::crypto
