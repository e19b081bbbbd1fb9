#include "crypto/shamir.h"

#include <sodium.h>

#include <set>

namespace toani::crypto {
namespace {

// Carry-less multiply modulo the AES polynomial, constant time.
uint8_t GfMul(uint8_t a, uint8_t b) {
  uint8_t r = 0;
  for (int i = 0; i < 8; ++i) {
    r = static_cast<uint8_t>(r ^ (static_cast<uint8_t>(-(b & 1)) & a));
    uint8_t hi = static_cast<uint8_t>(-(a >> 7));
    a = static_cast<uint8_t>((a << 1) ^ (hi & 0x1b));
    b = static_cast<uint8_t>(b >> 1);
  }
  return r;
}

// a^254 = a^-1 in GF(2^8) (0 maps to 0), by square-and-multiply with a fixed chain.
uint8_t GfInv(uint8_t a) {
  uint8_t a2 = GfMul(a, a);
  uint8_t a4 = GfMul(a2, a2);
  uint8_t a8 = GfMul(a4, a4);
  uint8_t a16 = GfMul(a8, a8);
  uint8_t a32 = GfMul(a16, a16);
  uint8_t a64 = GfMul(a32, a32);
  uint8_t a128 = GfMul(a64, a64);
  uint8_t r = GfMul(a128, a64);
  r = GfMul(r, a32);
  r = GfMul(r, a16);
  r = GfMul(r, a8);
  r = GfMul(r, a4);
  return GfMul(r, a2);
}

}  // namespace

StatusOr<std::vector<ShamirShare>> ShamirSplit(const SecretBytes& secret, int n, int threshold) {
  if (secret.empty()) return Status::InvalidArgument("shamir: empty secret");
  if (threshold < 1 || n < threshold || n > 255) {
    return Status::InvalidArgument("shamir: need 1 <= threshold <= shares <= 255");
  }
  const size_t len = secret.size();
  // coeffs[k*len + i]: coefficient k of the polynomial for byte i; coefficient 0 = secret.
  SecretBytes coeffs(len * static_cast<size_t>(threshold));
  std::copy(secret.UnsafeBytes().begin(), secret.UnsafeBytes().end(), coeffs.UnsafeMutableData());
  if (threshold > 1)
    randombytes_buf(coeffs.UnsafeMutableData() + len, len * static_cast<size_t>(threshold - 1));
  std::vector<ShamirShare> out;
  out.reserve(static_cast<size_t>(n));
  for (int s = 1; s <= n; ++s) {
    ShamirShare sh;
    sh.x = static_cast<uint8_t>(s);
    sh.y = SecretBytes(len);
    for (size_t i = 0; i < len; ++i) {
      // Horner: y = (...(c_{t-1} x + c_{t-2}) x + ...) x + c_0
      uint8_t y = 0;
      for (int k = threshold - 1; k >= 0; --k) {
        y = static_cast<uint8_t>(GfMul(y, sh.x) ^
                                 coeffs.UnsafeBytes()[static_cast<size_t>(k) * len + i]);
      }
      sh.y.UnsafeMutableData()[i] = y;
    }
    out.push_back(std::move(sh));
  }
  return out;
}

StatusOr<SecretBytes> ShamirCombine(const std::vector<ShamirShare>& shares) {
  if (shares.empty()) return Status::InvalidArgument("shamir: no shares");
  const size_t len = shares[0].y.size();
  std::set<uint8_t> xs;
  for (const auto& s : shares) {
    if (s.x == 0) return Status::InvalidArgument("shamir: share index 0 is invalid");
    if (!xs.insert(s.x).second) return Status::InvalidArgument("shamir: repeated share");
    if (s.y.size() != len || len == 0)
      return Status::InvalidArgument("shamir: shares differ in length");
  }
  SecretBytes out(len);
  for (size_t j = 0; j < shares.size(); ++j) {
    // Lagrange basis at 0: prod_{m != j} x_m / (x_m - x_j); subtraction is XOR.
    uint8_t num = 1, den = 1;
    for (size_t m = 0; m < shares.size(); ++m) {
      if (m == j) continue;
      num = GfMul(num, shares[m].x);
      den = GfMul(den, static_cast<uint8_t>(shares[m].x ^ shares[j].x));
    }
    uint8_t basis = GfMul(num, GfInv(den));
    for (size_t i = 0; i < len; ++i) {
      out.UnsafeMutableData()[i] =
          static_cast<uint8_t>(out.UnsafeBytes()[i] ^ GfMul(basis, shares[j].y.UnsafeBytes()[i]));
    }
  }
  return out;
}

}  // namespace toani::crypto
