// Shamir secret sharing over GF(2^8) (the AES field, x^8+x^4+x^3+x+1), byte-wise,
// as used for L0 custody (DESIGN.md §3). The arithmetic is written to run in
// constant time (no table lookups indexed by secret bytes, no secret branches).
// libsodium and OpenSSL have no secret-sharing primitive; this is a scheme over
// field arithmetic, not a cipher, and every byte of key material it touches lives
// in SecretBytes. Thread-safe; no shared state.
#pragma once

#include <cstdint>
#include <vector>

#include "common/secret.h"
#include "common/status.h"

namespace toani::crypto {

struct ShamirShare {
  uint8_t x = 0;  // 1..255, never 0 (x = 0 is the secret)
  SecretBytes y;  // same length as the secret
};

// Splits `secret` into `n` shares of which any `threshold` reconstruct it.
// InvalidArgument unless 1 <= threshold <= n <= 255 and the secret is non-empty.
StatusOr<std::vector<ShamirShare>> ShamirSplit(const SecretBytes& secret, int n, int threshold);

// Lagrange interpolation at 0. InvalidArgument for no shares, an x of 0, a repeated
// x, or shares of different lengths. With fewer than `threshold` shares (or a wrong
// share) the result is a wrong secret, which the caller must detect (keyd checks L0
// against a stored key check value).
StatusOr<SecretBytes> ShamirCombine(const std::vector<ShamirShare>& shares);

}  // namespace toani::crypto
