// Helpers shared by the keyd tests: temporary directories, sealing to keyd's intake
// key, opening shares keyd sealed to us.
#pragma once

#include <sodium.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/encoding.h"
#include "common/secret.h"

namespace toani::keyd::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/toani-keyd-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

inline std::string SealTo(const std::string& pk_b64, std::string_view secret) {
  auto pk = Base64UrlDecodeStrict(pk_b64);
  Bytes out(secret.size() + crypto_box_SEALBYTES);
  crypto_box_seal(out.data(), reinterpret_cast<const uint8_t*>(secret.data()), secret.size(),
                  pk->data());
  return Base64UrlEncode(out);
}

struct Recipient {
  uint8_t pk[crypto_box_PUBLICKEYBYTES];
  SecretBytes sk{crypto_box_SECRETKEYBYTES};
  Recipient() { crypto_box_keypair(pk, sk.UnsafeMutableData()); }
  std::string PublicB64() const { return Base64UrlEncode(std::span<const uint8_t>(pk, sizeof pk)); }
  // Opens a sealed box; "" if it does not open.
  std::string Open(const std::string& sealed_b64) const {
    auto c = Base64UrlDecodeStrict(sealed_b64);
    if (!c.ok() || c->size() <= crypto_box_SEALBYTES) return "";
    std::string out(c->size() - crypto_box_SEALBYTES, '\0');
    if (crypto_box_seal_open(reinterpret_cast<uint8_t*>(out.data()), c->data(), c->size(), pk,
                             sk.UnsafeBytes().data()) != 0) {
      return "";
    }
    return out;
  }
};

}  // namespace toani::keyd::testing
