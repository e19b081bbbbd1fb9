#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <memory>

#include "common/status.h"

namespace toani::crypto {
namespace {
struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
}  // namespace

SecretBytes HkdfSha256(const SecretBytes& ikm, std::span<const uint8_t> salt,
                       std::span<const uint8_t> info, size_t out_len) {
  TOANI_CHECK(out_len >= 1 && out_len <= 255 * 32);
  TOANI_CHECK(!ikm.empty());
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  TOANI_CHECK(kdf != nullptr);
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  TOANI_CHECK(ctx != nullptr);

  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  // OpenSSL's param API takes non-const pointers but only reads these buffers.
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.UnsafeBytes().data()), ikm.size());
  if (!salt.empty()) {  // absent salt == HashLen zeros, per RFC 5869
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<uint8_t*>(info.data()), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  SecretBytes out(out_len);
  TOANI_CHECK(EVP_KDF_derive(ctx.get(), out.UnsafeMutableData(), out_len, params) == 1);
  return out;
}

std::array<uint8_t, 32> HmacSha256(const SecretBytes& key, std::span<const uint8_t> msg) {
  crypto_auth_hmacsha256_state st;
  std::array<uint8_t, 32> out;
  crypto_auth_hmacsha256_init(&st, key.UnsafeBytes().data(), key.size());
  crypto_auth_hmacsha256_update(&st, msg.data(), msg.size());
  crypto_auth_hmacsha256_final(&st, out.data());
  sodium_memzero(&st, sizeof(st));
  return out;
}

}  // namespace toani::crypto
