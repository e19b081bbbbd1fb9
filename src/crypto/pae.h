// PASETO Pre-Authentication Encoding (Common.md "Authentication Padding"):
// LE64(count) || for each piece LE64(len) || piece, the top bit of every LE64
// cleared. Shared by v4.local and v4.public.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "common/encoding.h"

namespace toani::crypto {

// The LE64 encoding of n with its top bit cleared.
inline std::array<uint8_t, 8> PaeLe64(uint64_t n) {
  n &= ~(uint64_t{1} << 63);
  std::array<uint8_t, 8> out;
  for (auto& b : out) {
    b = static_cast<uint8_t>(n & 0xFF);
    n >>= 8;
  }
  return out;
}

// Feeds PAE(pieces) to `sink(std::span<const uint8_t>)` piece by piece, so a MAC can be
// computed over it without building the buffer (v4.local's tag).
template <typename Sink>
void PaeStream(std::initializer_list<std::span<const uint8_t>> pieces, Sink&& sink) {
  const auto count = PaeLe64(pieces.size());
  sink(std::span<const uint8_t>(count));
  for (const auto& p : pieces) {
    const auto len = PaeLe64(p.size());
    sink(std::span<const uint8_t>(len));
    sink(p);
  }
}

// PAE(pieces) as one buffer (v4.public signs it).
Bytes Pae(std::initializer_list<std::span<const uint8_t>> pieces);

}  // namespace toani::crypto
