// Standard Webhooks (https://www.standardwebhooks.com, spec v1): signing and
// verifying webhook messages with a symmetric secret.
//
// Wire form (docs/formats.md, "Standard Webhooks"):
//   secret            "whsec_" + base64(key), key 24..64 random bytes
//   webhook-id        the message id (unique per message; receivers dedupe on it)
//   webhook-timestamp integer seconds since the Unix epoch, decimal
//   webhook-signature space-separated "v1,<base64(HMAC-SHA256(key, id.timestamp.body))>"
// A receiver accepts when the timestamp is within the tolerance (default 300 s, both
// directions) and any v1 signature matches (constant-time); other versions are ignored.
//
// Thread-safe: every function is pure apart from GenerateWebhookSecret (randomness).
// Replay protection (remembering ids) is the caller's job: Verify checks signature and
// freshness only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/secret.h"
#include "common/status.h"

namespace toani {

inline constexpr std::string_view kWebhookSecretPrefix = "whsec_";
inline constexpr int64_t kWebhookDefaultToleranceSeconds = 300;
inline constexpr size_t kWebhookMinKeyBytes = 24;
inline constexpr size_t kWebhookMaxKeyBytes = 64;
inline constexpr size_t kWebhookMaxIdBytes = 256;

// "whsec_<base64>" (the prefix is optional on input) -> the raw HMAC key.
// InvalidArgument for bad base64 or a key outside 24..64 bytes.
StatusOr<SecretBytes> ParseWebhookSecret(std::string_view whsec);
// The raw key as "whsec_<base64>". The returned string holds the secret: wipe it.
std::string FormatWebhookSecret(const SecretBytes& key);
// A fresh 32-byte key.
SecretBytes GenerateWebhookSecret();

// "v1,<base64 HMAC-SHA256(key, id + '.' + timestamp + '.' + body)>".
std::string SignWebhook(const SecretBytes& key, std::string_view id, int64_t timestamp,
                        std::string_view body);

struct WebhookHeaders {
  std::string_view id;         // webhook-id
  std::string_view timestamp;  // webhook-timestamp (as received, decimal seconds)
  std::string_view signature;  // webhook-signature (space-separated list)
};

// Unauthenticated with a message that names the reason ("missing webhook-id",
// "timestamp too old", "timestamp too new", "no matching signature"); never says
// which signature was expected. `now` is Unix seconds.
Status VerifyWebhook(const SecretBytes& key, const WebhookHeaders& headers, std::string_view body,
                     int64_t now, int64_t tolerance_seconds = kWebhookDefaultToleranceSeconds);

}  // namespace toani
