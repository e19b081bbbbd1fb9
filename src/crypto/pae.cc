#include "crypto/pae.h"

namespace toani::crypto {

Bytes Pae(std::initializer_list<std::span<const uint8_t>> pieces) {
  size_t total = 8;
  for (const auto& p : pieces) total += 8 + p.size();
  Bytes out;
  out.reserve(total);
  PaeStream(pieces, [&](std::span<const uint8_t> s) { out.insert(out.end(), s.begin(), s.end()); });
  return out;
}

}  // namespace toani::crypto
