#include "crypto/pae.h"

namespace toani::crypto {
namespace {

void AppendLe64(uint64_t n, Bytes* out) {
  n &= ~(uint64_t{1} << 63);
  for (int i = 0; i < 8; ++i) {
    out->push_back(static_cast<uint8_t>(n & 0xFF));
    n >>= 8;
  }
}

}  // namespace

Bytes Pae(std::initializer_list<std::span<const uint8_t>> pieces) {
  size_t total = 8;
  for (const auto& p : pieces) total += 8 + p.size();
  Bytes out;
  out.reserve(total);
  AppendLe64(pieces.size(), &out);
  for (const auto& p : pieces) {
    AppendLe64(p.size(), &out);
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

}  // namespace toani::crypto
