#include "crypto/paseto_public.h"

#include <sodium.h>

#include "common/encoding.h"
#include "crypto/b64url.h"
#include "crypto/pae.h"

namespace toani::crypto {
namespace {

constexpr std::string_view kHeader = "v4.public.";
constexpr size_t kSigSize = crypto_sign_BYTES;  // 64

Status InvalidToken() { return Status::Unauthenticated("invalid token"); }

}  // namespace

StatusOr<std::string> PasetoV4PublicSign(const SecretBytes& sk64, std::string_view payload,
                                         std::string_view footer,
                                         std::string_view implicit_assertion) {
  if (sk64.size() != crypto_sign_SECRETKEYBYTES) {
    return Status::InvalidArgument("paseto: Ed25519 secret key must be 64 bytes");
  }
  TOANI_CHECK(sodium_init() >= 0);
  const Bytes m2 =
      Pae({AsBytes(kHeader), AsBytes(payload), AsBytes(footer), AsBytes(implicit_assertion)});
  Bytes body(AsBytes(payload).begin(), AsBytes(payload).end());
  body.resize(payload.size() + kSigSize);
  TOANI_CHECK(crypto_sign_detached(body.data() + payload.size(), nullptr, m2.data(), m2.size(),
                                   sk64.UnsafeBytes().data()) == 0);
  std::string token(kHeader);
  token += PublicBase64UrlEncode(body);
  if (!footer.empty()) {
    token.push_back('.');
    token += PublicBase64UrlEncode(AsBytes(footer));
  }
  return token;
}

StatusOr<PasetoMessage> PasetoV4PublicVerify(std::span<const uint8_t> pk32, std::string_view token,
                                             std::string_view implicit_assertion) {
  if (pk32.size() != crypto_sign_PUBLICKEYBYTES) {
    return Status::InvalidArgument("paseto: Ed25519 public key must be 32 bytes");
  }
  if (token.substr(0, kHeader.size()) != kHeader) return InvalidToken();
  std::string_view rest = token.substr(kHeader.size());
  std::string_view body_b64 = rest, footer_b64;
  if (size_t dot = rest.find('.'); dot != std::string_view::npos) {
    body_b64 = rest.substr(0, dot);
    footer_b64 = rest.substr(dot + 1);
    if (footer_b64.empty() || footer_b64.find('.') != std::string_view::npos) return InvalidToken();
  }
  auto body = PublicBase64UrlDecodeStrict(body_b64);
  if (!body || body->size() < kSigSize) return InvalidToken();
  auto footer = PublicBase64UrlDecodeStrict(footer_b64);
  if (!footer || (!footer_b64.empty() && footer->empty())) return InvalidToken();
  const std::span<const uint8_t> all(*body);
  const auto m = all.first(all.size() - kSigSize);
  const auto sig = all.last(kSigSize);
  TOANI_CHECK(sodium_init() >= 0);
  const Bytes m2 = Pae({AsBytes(kHeader), m, *footer, AsBytes(implicit_assertion)});
  if (crypto_sign_verify_detached(sig.data(), m2.data(), m2.size(), pk32.data()) != 0) {
    return InvalidToken();
  }
  PasetoMessage msg;
  msg.payload.assign(m.begin(), m.end());
  msg.footer = ToString(*footer);
  return msg;
}

}  // namespace toani::crypto
