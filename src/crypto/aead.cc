#include "crypto/aead.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <memory>

namespace toani::crypto {
namespace {

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

// EVP takes int lengths; stay far below INT_MAX (credentials are small).
constexpr size_t kMaxInput = size_t{1} << 30;

Status DecryptionFailed() { return Status::InvalidArgument("decryption failed"); }

}  // namespace

StatusOr<Bytes> AesGcmSeal(const SecretBytes& key32, std::span<const uint8_t> plaintext,
                           std::span<const uint8_t> ad) {
  if (key32.size() != kAesGcmKeySize) {
    return Status::InvalidArgument("aes-gcm: key must be 32 bytes");
  }
  if (plaintext.size() > kMaxInput || ad.size() > kMaxInput) {
    return Status::InvalidArgument("aes-gcm: input too large");
  }
  Bytes out(kAesGcmNonceSize + plaintext.size() + kAesGcmTagSize);
  randombytes_buf(out.data(), kAesGcmNonceSize);

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  TOANI_CHECK(ctx != nullptr);
  int len = 0;
  TOANI_CHECK(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key32.UnsafeBytes().data(),
                                 out.data()) == 1);
  if (!ad.empty()) {
    TOANI_CHECK(
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, ad.data(), static_cast<int>(ad.size())) == 1);
  }
  uint8_t* ct = out.data() + kAesGcmNonceSize;
  size_t written = 0;
  if (!plaintext.empty()) {
    TOANI_CHECK(EVP_EncryptUpdate(ctx.get(), ct, &len, plaintext.data(),
                                  static_cast<int>(plaintext.size())) == 1);
    written = static_cast<size_t>(len);
  }
  TOANI_CHECK(EVP_EncryptFinal_ex(ctx.get(), ct + written, &len) == 1);
  written += static_cast<size_t>(len);
  TOANI_CHECK(written == plaintext.size());
  TOANI_CHECK(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAesGcmTagSize),
                                  ct + written) == 1);
  return out;
}

StatusOr<SecretBytes> AesGcmOpen(const SecretBytes& key32, std::span<const uint8_t> blob,
                                 std::span<const uint8_t> ad) {
  if (key32.size() != kAesGcmKeySize || blob.size() < kAesGcmOverhead || blob.size() > kMaxInput ||
      ad.size() > kMaxInput) {
    return DecryptionFailed();
  }
  const auto nonce = blob.first(kAesGcmNonceSize);
  const auto ct = blob.subspan(kAesGcmNonceSize, blob.size() - kAesGcmOverhead);
  const auto tag = blob.last(kAesGcmTagSize);

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  TOANI_CHECK(ctx != nullptr);
  int len = 0;
  TOANI_CHECK(EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key32.UnsafeBytes().data(),
                                 nonce.data()) == 1);
  if (!ad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, ad.data(), static_cast<int>(ad.size())) != 1) {
    return DecryptionFailed();
  }
  // Plaintext goes straight into wiped memory; it is released (and wiped) on failure.
  SecretBytes pt(ct.size());
  size_t written = 0;
  if (!ct.empty()) {
    if (EVP_DecryptUpdate(ctx.get(), pt.UnsafeMutableData(), &len, ct.data(),
                          static_cast<int>(ct.size())) != 1) {
      return DecryptionFailed();
    }
    written = static_cast<size_t>(len);
  }
  // OpenSSL only reads the expected tag, despite the non-const pointer.
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAesGcmTagSize),
                          const_cast<uint8_t*>(tag.data())) != 1) {
    return DecryptionFailed();
  }
  uint8_t final_block[16];
  if (EVP_DecryptFinal_ex(ctx.get(), final_block, &len) != 1 || len != 0 || written != ct.size()) {
    return DecryptionFailed();
  }
  return pt;
}

}  // namespace toani::crypto
