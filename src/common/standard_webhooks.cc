#include "common/standard_webhooks.h"

#include <sodium.h>

#include <charconv>
#include <vector>

#include "common/encoding.h"

namespace toani {
namespace {

constexpr std::string_view kVersion = "v1";

std::vector<uint8_t> Hmac(const SecretBytes& key, std::string_view id, std::string_view timestamp,
                          std::string_view body) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key.UnsafeBytes().data(), key.size());
  auto update = [&](std::string_view s) {
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  };
  update(id);
  update(".");
  update(timestamp);
  update(".");
  update(body);
  std::vector<uint8_t> mac(crypto_auth_hmacsha256_BYTES);
  crypto_auth_hmacsha256_final(&st, mac.data());
  sodium_memzero(&st, sizeof(st));
  return mac;
}

}  // namespace

StatusOr<SecretBytes> ParseWebhookSecret(std::string_view whsec) {
  if (whsec.starts_with(kWebhookSecretPrefix)) whsec.remove_prefix(kWebhookSecretPrefix.size());
  auto raw = Base64Decode(whsec);
  if (!raw.ok()) return Status::InvalidArgument("webhook secret: not whsec_ + standard base64");
  SecretBytes key = SecretBytes::Copy(*raw);
  sodium_memzero(raw->data(), raw->size());
  if (key.size() < kWebhookMinKeyBytes || key.size() > kWebhookMaxKeyBytes) {
    return Status::InvalidArgument("webhook secret: key must be 24 to 64 bytes");
  }
  return key;
}

std::string FormatWebhookSecret(const SecretBytes& key) {
  return std::string(kWebhookSecretPrefix) + Base64Encode(key.UnsafeBytes());
}

SecretBytes GenerateWebhookSecret() { return SecretBytes::Random(32); }

std::string SignWebhook(const SecretBytes& key, std::string_view id, int64_t timestamp,
                        std::string_view body) {
  std::string ts = std::to_string(timestamp);
  return std::string(kVersion) + "," + Base64Encode(Hmac(key, id, ts, body));
}

Status VerifyWebhook(const SecretBytes& key, const WebhookHeaders& h, std::string_view body,
                     int64_t now, int64_t tolerance_seconds) {
  if (h.id.empty()) return Status::Unauthenticated("webhook: missing webhook-id");
  if (h.timestamp.empty()) return Status::Unauthenticated("webhook: missing webhook-timestamp");
  if (h.signature.empty()) return Status::Unauthenticated("webhook: missing webhook-signature");
  if (h.id.size() > kWebhookMaxIdBytes)
    return Status::Unauthenticated("webhook: webhook-id too long");
  // Strict decimal: digits only (no sign, spaces or fractions), at most 12 digits.
  if (h.timestamp.size() > 12) return Status::Unauthenticated("webhook: bad webhook-timestamp");
  for (char c : h.timestamp) {
    if (c < '0' || c > '9') return Status::Unauthenticated("webhook: bad webhook-timestamp");
  }
  int64_t ts = 0;
  std::from_chars(h.timestamp.data(), h.timestamp.data() + h.timestamp.size(), ts);
  if (now - ts > tolerance_seconds) return Status::Unauthenticated("webhook: timestamp too old");
  if (ts - now > tolerance_seconds) return Status::Unauthenticated("webhook: timestamp too new");

  const std::vector<uint8_t> expected = Hmac(key, h.id, h.timestamp, body);
  bool match = false;
  std::string_view rest = h.signature;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    std::string_view one = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    size_t comma = one.find(',');
    if (comma == std::string_view::npos || one.substr(0, comma) != kVersion) continue;
    auto sig = Base64Decode(one.substr(comma + 1));
    if (!sig.ok() || sig->size() != expected.size()) continue;
    // Check every candidate (no early exit) so timing says nothing about which matched.
    match |= sodium_memcmp(sig->data(), expected.data(), expected.size()) == 0;
  }
  if (!match) return Status::Unauthenticated("webhook: no matching signature");
  return Status::Ok();
}

}  // namespace toani
