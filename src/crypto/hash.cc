#include "crypto/hash.h"

#include <sodium.h>

#include "common/encoding.h"

namespace toani::crypto {

Sha256Digest Sha256(std::span<const uint8_t> data) {
  Sha256Digest out;
  crypto_hash_sha256(out.data(), data.data(), data.size());
  return out;
}

std::string Sha256Hex(std::string_view data) { return HexEncode(Sha256(AsBytes(data))); }

}  // namespace toani::crypto
