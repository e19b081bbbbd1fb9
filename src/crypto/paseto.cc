#include "crypto/paseto.h"

#include <sodium.h>

#include <array>
#include <initializer_list>
#include <vector>

#include "common/encoding.h"
#include "crypto/b64url.h"
#include "crypto/pae.h"

namespace toani::crypto {
namespace {

constexpr std::string_view kHeader = "v4.local.";
constexpr std::string_view kEncKeyInfo = "paseto-encryption-key";
constexpr std::string_view kAuthKeyInfo = "paseto-auth-key-for-aead";
constexpr size_t kTagSize = 32;
constexpr size_t kXNonceSize = crypto_stream_xchacha20_NONCEBYTES;  // 24

static_assert(crypto_stream_xchacha20_KEYBYTES == 32);
static_assert(crypto_generichash_BYTES_MAX >= 56);

Status InvalidToken() { return Status::Unauthenticated("invalid token"); }

// Keyed BLAKE2b of info || nonce.
void KeyedBlake2b(const uint8_t* key, std::string_view info, std::span<const uint8_t> nonce,
                  uint8_t* out, size_t out_len) {
  crypto_generichash_state st;
  TOANI_CHECK(crypto_generichash_init(&st, key, kPasetoV4LocalKeySize, out_len) == 0);
  crypto_generichash_update(&st, AsBytes(info).data(), info.size());
  crypto_generichash_update(&st, nonce.data(), nonce.size());
  TOANI_CHECK(crypto_generichash_final(&st, out, out_len) == 0);
  sodium_memzero(&st, sizeof(st));
}

// Splits the key per step 3: Ek || n2 (56 bytes) and Ak (32 bytes), in wiped memory.
struct SplitKeys {
  SecretBytes ek_n2{32 + kXNonceSize};
  SecretBytes ak{32};
  const uint8_t* ek() const { return ek_n2.UnsafeBytes().data(); }
  const uint8_t* n2() const { return ek_n2.UnsafeBytes().data() + 32; }
};

SplitKeys Split(const SecretBytes& key32, std::span<const uint8_t> nonce) {
  SplitKeys k;
  const uint8_t* key = key32.UnsafeBytes().data();
  KeyedBlake2b(key, kEncKeyInfo, nonce, k.ek_n2.UnsafeMutableData(), k.ek_n2.size());
  KeyedBlake2b(key, kAuthKeyInfo, nonce, k.ak.UnsafeMutableData(), k.ak.size());
  return k;
}

std::array<uint8_t, kTagSize> Mac(const SplitKeys& k, std::span<const uint8_t> pre_auth) {
  std::array<uint8_t, kTagSize> t;
  TOANI_CHECK(crypto_generichash(t.data(), t.size(), pre_auth.data(), pre_auth.size(),
                                 k.ak.UnsafeBytes().data(), k.ak.size()) == 0);
  return t;
}

struct TokenParts {
  std::string_view body;    // base64url(n || c || t)
  std::string_view footer;  // base64url(f), empty when absent
};

// Splits "v4.local.<body>[.<footer>]". A present footer segment must be non-empty: the
// encoder never writes "<body>." so accepting it would give one token two spellings.
bool SplitToken(std::string_view token, TokenParts* parts) {
  if (token.substr(0, kHeader.size()) != kHeader) return false;
  std::string_view rest = token.substr(kHeader.size());
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos) {
    parts->body = rest;
    parts->footer = {};
    return true;
  }
  parts->body = rest.substr(0, dot);
  parts->footer = rest.substr(dot + 1);
  return !parts->footer.empty() && parts->footer.find('.') == std::string_view::npos;
}

}  // namespace

StatusOr<std::string> PasetoV4LocalEncryptWithNonce(const SecretBytes& key32,
                                                    std::string_view payload,
                                                    std::string_view footer,
                                                    std::string_view implicit_assertion,
                                                    std::span<const uint8_t> nonce32) {
  if (key32.size() != kPasetoV4LocalKeySize) {
    return Status::InvalidArgument("paseto: key must be 32 bytes");
  }
  if (nonce32.size() != kPasetoV4LocalNonceSize) {
    return Status::InvalidArgument("paseto: nonce must be 32 bytes");
  }
  TOANI_CHECK(sodium_init() >= 0);
  const SplitKeys k = Split(key32, nonce32);

  // n || c || t, encrypted in place.
  Bytes body(kPasetoV4LocalNonceSize + payload.size() + kTagSize);
  std::copy(nonce32.begin(), nonce32.end(), body.begin());
  const auto c = std::span<uint8_t>(body).subspan(kPasetoV4LocalNonceSize, payload.size());
  TOANI_CHECK(crypto_stream_xchacha20_xor(c.data(), AsBytes(payload).data(), payload.size(), k.n2(),
                                          k.ek()) == 0);
  const Bytes pre_auth =
      Pae({AsBytes(kHeader), nonce32, c, AsBytes(footer), AsBytes(implicit_assertion)});
  const auto t = Mac(k, pre_auth);
  std::copy(t.begin(), t.end(), body.end() - kTagSize);

  std::string token(kHeader);
  token += PublicBase64UrlEncode(body);
  if (!footer.empty()) {
    token.push_back('.');
    token += PublicBase64UrlEncode(AsBytes(footer));
  }
  return token;
}

StatusOr<std::string> PasetoV4LocalEncrypt(const SecretBytes& key32, std::string_view payload,
                                           std::string_view footer,
                                           std::string_view implicit_assertion) {
  TOANI_CHECK(sodium_init() >= 0);
  std::array<uint8_t, kPasetoV4LocalNonceSize> nonce;
  randombytes_buf(nonce.data(), nonce.size());
  return PasetoV4LocalEncryptWithNonce(key32, payload, footer, implicit_assertion, nonce);
}

StatusOr<PasetoMessage> PasetoV4LocalDecrypt(const SecretBytes& key32, std::string_view token,
                                             std::string_view implicit_assertion) {
  if (key32.size() != kPasetoV4LocalKeySize) {
    return Status::InvalidArgument("paseto: key must be 32 bytes");
  }
  TokenParts parts;
  if (!SplitToken(token, &parts)) return InvalidToken();
  auto body = PublicBase64UrlDecodeStrict(parts.body);
  if (!body || body->size() < kPasetoV4LocalNonceSize + kTagSize) return InvalidToken();
  auto footer = PublicBase64UrlDecodeStrict(parts.footer);
  if (!footer) return InvalidToken();
  if (!parts.footer.empty() && footer->empty()) return InvalidToken();

  const std::span<const uint8_t> all(*body);
  const auto n = all.first(kPasetoV4LocalNonceSize);
  const auto c =
      all.subspan(kPasetoV4LocalNonceSize, all.size() - kPasetoV4LocalNonceSize - kTagSize);
  const auto t = all.last(kTagSize);

  TOANI_CHECK(sodium_init() >= 0);
  const SplitKeys k = Split(key32, n);
  const Bytes pre_auth = Pae({AsBytes(kHeader), n, c, *footer, AsBytes(implicit_assertion)});
  const auto t2 = Mac(k, pre_auth);
  if (crypto_verify_32(t.data(), t2.data()) != 0) return InvalidToken();

  PasetoMessage msg;
  msg.payload.resize(c.size());
  TOANI_CHECK(crypto_stream_xchacha20_xor(reinterpret_cast<uint8_t*>(msg.payload.data()), c.data(),
                                          c.size(), k.n2(), k.ek()) == 0);
  msg.footer = ToString(*footer);
  return msg;
}

StatusOr<std::string> PasetoUntrustedFooter(std::string_view token) {
  TokenParts parts;
  if (!SplitToken(token, &parts)) return Status::InvalidArgument("paseto: not a v4.local token");
  auto footer = PublicBase64UrlDecodeStrict(parts.footer);
  if (!footer) return Status::InvalidArgument("paseto: malformed footer");
  return ToString(*footer);
}

}  // namespace toani::crypto
