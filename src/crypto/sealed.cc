#include "crypto/sealed.h"

#include <sodium.h>

namespace toani::crypto {

static_assert(crypto_box_PUBLICKEYBYTES == kBoxPublicKeySize);
static_assert(crypto_box_SECRETKEYBYTES == kBoxSecretKeySize);
static_assert(crypto_box_SEALBYTES == kSealOverhead);

BoxKeyPair BoxKeyPairGenerate() {
  TOANI_CHECK(sodium_init() >= 0);
  BoxKeyPair kp{Bytes(kBoxPublicKeySize), SecretBytes(kBoxSecretKeySize)};
  TOANI_CHECK(crypto_box_keypair(kp.public_key.data(), kp.secret_key.UnsafeMutableData()) == 0);
  return kp;
}

StatusOr<Bytes> SealToPublicKey(std::span<const uint8_t> pk, std::span<const uint8_t> plaintext) {
  if (pk.size() != kBoxPublicKeySize) {
    return Status::InvalidArgument("sealed box: public key must be 32 bytes");
  }
  TOANI_CHECK(sodium_init() >= 0);
  Bytes out(plaintext.size() + kSealOverhead);
  if (crypto_box_seal(out.data(), plaintext.data(), plaintext.size(), pk.data()) != 0) {
    return Status::InvalidArgument("sealed box: unusable public key");
  }
  return out;
}

StatusOr<SecretBytes> OpenSealed(const BoxKeyPair& kp, std::span<const uint8_t> sealed) {
  const Status failed = Status::InvalidArgument("decryption failed");
  if (kp.public_key.size() != kBoxPublicKeySize || kp.secret_key.size() != kBoxSecretKeySize ||
      sealed.size() < kSealOverhead) {
    return failed;
  }
  TOANI_CHECK(sodium_init() >= 0);
  SecretBytes pt(sealed.size() - kSealOverhead);
  uint8_t empty_sink = 0;  // SecretBytes(0) has no buffer; libsodium wants a pointer
  if (crypto_box_seal_open(pt.empty() ? &empty_sink : pt.UnsafeMutableData(), sealed.data(),
                           sealed.size(), kp.public_key.data(),
                           kp.secret_key.UnsafeBytes().data()) != 0) {
    return failed;
  }
  return pt;
}

}  // namespace toani::crypto
