// KeyService ops on credentials and Action Tokens (docs/formats.md §2–§4).
#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"
#include "common/secret.h"
#include "common/standard_webhooks.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/paseto.h"
#include "keyd/key_service.h"

namespace toani::keyd {
namespace {

using nlohmann::json;

constexpr int kMaxTtlSeconds = 3600;
constexpr size_t kMaxCredentialBytes = 64 * 1024;
constexpr std::string_view kBlobPrefix = "c2.";
constexpr size_t kBlobHeader = 4 + 32;  // key version (BE) || salt

std::span<const uint8_t> B(std::string_view s) { return AsBytes(s); }

std::string CredentialAd(const std::string& tenant, const std::string& cred_id, int64_t version,
                         int key_version) {
  std::string ad = "toani.credential.v2";
  for (const std::string& part :
       {tenant, cred_id, std::to_string(version), std::to_string(key_version)}) {
    ad.push_back('\0');
    ad += part;
  }
  return ad;
}

// L2 = HKDF(L1, salt = credential id, info = "credential" || 0x00 || version).
SecretBytes CredentialKey(const SecretBytes& l1, const std::string& cred_id, int64_t version) {
  std::string info = "credential";
  info.push_back('\0');
  info += std::to_string(version);
  return crypto::HkdfSha256(l1, B(cred_id), B(info), 32);
}

std::string Fingerprint(const SecretBytes& key, const SecretBytes& plain) {
  auto fp = crypto::HmacSha256(key, plain.UnsafeBytes());
  return "hmac-sha256:" + HexEncode(std::span<const uint8_t>(fp.data(), fp.size()));
}

// {"tee": measurement, "tenant": tenant} in RFC 8785 form (members in canonical order).
// A tenant that is not UTF-8 has no canonical form: InvalidArgument.
StatusOr<std::string> ImplicitAssertion(const std::string& measurement, const std::string& tenant) {
  std::string out = "{\"tee\":";
  TOANI_RETURN_IF_ERROR(AppendJsonString(measurement, &out));
  out += ",\"tenant\":";
  if (!AppendJsonString(tenant, &out).ok())
    return Status::InvalidArgument("tenant is not valid UTF-8");
  out += '}';
  return out;
}

StatusOr<SysTime> Time(const json& claims, const char* key) {
  if (!claims.contains(key) || !claims[key].is_string())
    return Status::Unauthenticated("token lacks " + std::string(key));
  auto t = ParseRfc3339(claims[key].get<std::string>());
  if (!t.ok()) return Status::Unauthenticated(std::string("token ") + key + " is malformed");
  return *t;
}

}  // namespace

StatusOr<json> KeyService::SealBlob(const std::string& tenant, const std::string& cred_id,
                                    int64_t version, const SecretBytes& plain) {
  TOANI_ASSIGN_OR_RETURN(const TenantKey* tk, keyring_->Current(tenant));
  SecretBytes l2 = CredentialKey(tk->l1, cred_id, version);
  Bytes blob(kBlobHeader);
  const auto kv = static_cast<uint32_t>(tk->version);
  blob[0] = static_cast<uint8_t>(kv >> 24);
  blob[1] = static_cast<uint8_t>(kv >> 16);
  blob[2] = static_cast<uint8_t>(kv >> 8);
  blob[3] = static_cast<uint8_t>(kv);
  randombytes_buf(blob.data() + 4, 32);
  SecretBytes l3 =
      crypto::HkdfSha256(l2, std::span<const uint8_t>(blob.data() + 4, 32), B("data-key"), 32);
  TOANI_ASSIGN_OR_RETURN(
      Bytes ct, crypto::AesGcmSeal(l3, plain.UnsafeBytes(),
                                   B(CredentialAd(tenant, cred_id, version, tk->version))));
  blob.insert(blob.end(), ct.begin(), ct.end());
  return json{{"blob", std::string(kBlobPrefix) + Base64UrlEncode(blob)},
              {"fingerprint", Fingerprint(tk->fingerprint_key, plain)},
              {"key_version", tk->version}};
}

StatusOr<SecretBytes> KeyService::OpenBlob(const std::string& tenant, const std::string& cred_id,
                                           int64_t version, const std::string& blob) const {
  const Status bad = Status::InvalidArgument("credential blob does not open");
  if (blob.rfind(kBlobPrefix, 0) != 0)
    return Status::InvalidArgument("credential blob: unknown format");
  auto raw = Base64UrlDecodeStrict(std::string_view(blob).substr(kBlobPrefix.size()));
  if (!raw.ok() || raw->size() < kBlobHeader + crypto::kAesGcmOverhead) return bad;
  const uint8_t* p = raw->data();
  const uint32_t kv =
      (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (kv < 1 || kv > 1000000) return bad;
  auto tk = keyring_->Version(tenant, static_cast<int>(kv));
  if (!tk.ok()) return bad;
  SecretBytes l2 = CredentialKey((*tk)->l1, cred_id, version);
  SecretBytes l3 = crypto::HkdfSha256(l2, std::span<const uint8_t>(p + 4, 32), B("data-key"), 32);
  auto plain =
      crypto::AesGcmOpen(l3, std::span<const uint8_t>(p + kBlobHeader, raw->size() - kBlobHeader),
                         B(CredentialAd(tenant, cred_id, version, static_cast<int>(kv))));
  if (!plain.ok()) return bad;
  return plain;
}

StatusOr<json> KeyService::ImportCredential(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(std::string cred_id, ReqStr(req, "credential_id", 128));
  TOANI_ASSIGN_OR_RETURN(int64_t version, ReqInt(req, "version"));
  TOANI_ASSIGN_OR_RETURN(std::string sealed_b64, ReqStr(req, "sealed", 128 * 1024));
  if (version < 1 || version > 1000000)
    return Status::InvalidArgument("version must be 1..1000000");
  TOANI_ASSIGN_OR_RETURN(SecretBytes plain, OpenSealed(sealed_b64, kMaxCredentialBytes));
  return SealBlob(tenant, cred_id, version, plain);
}

StatusOr<json> KeyService::RewrapCredential(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(std::string cred_id, ReqStr(req, "credential_id", 128));
  TOANI_ASSIGN_OR_RETURN(int64_t version, ReqInt(req, "version"));
  TOANI_ASSIGN_OR_RETURN(std::string blob, ReqStr(req, "blob", 128 * 1024));
  TOANI_ASSIGN_OR_RETURN(SecretBytes plain, OpenBlob(tenant, cred_id, version, blob));
  TOANI_ASSIGN_OR_RETURN(json out, SealBlob(tenant, cred_id, version, plain));
  return out;
}

StatusOr<json> KeyService::MintToken(const json& req) {
  MintRequest r;
  TOANI_ASSIGN_OR_RETURN(r.tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(r.agent, ReqStr(req, "agent", 128));
  TOANI_ASSIGN_OR_RETURN(r.user, ReqStr(req, "user", 128));
  TOANI_ASSIGN_OR_RETURN(r.ttl_seconds, ReqInt(req, "ttl_seconds"));
  if (!req.contains("claims") || !req["claims"].is_object())
    return Status::InvalidArgument("missing object 'claims'");
  const json& in = req["claims"];
  for (auto [k, out] : {std::pair{"policy_id", &r.policy_id}, std::pair{"action", &r.action},
                        std::pair{"params_hash", &r.params_hash}}) {
    if (!in.contains(k) || !in[k].is_string())
      return Status::InvalidArgument(std::string("claims.") + k + " missing");
    *out = in[k].get<std::string>();
  }
  if (in.contains("policy_version") && in["policy_version"].is_number_integer())
    r.policy_version = in["policy_version"].get<int64_t>();
  if (in.contains("risk_tier") && in["risk_tier"].is_string()) r.risk_tier = in["risk_tier"];
  r.hitl = in.contains("hitl") && in["hitl"].is_object() ? in["hitl"] : NoApprovalHitl();
  if (!in.contains("cred") || !in["cred"].is_array())
    return Status::InvalidArgument("claims.cred must be an array");
  for (const auto& c : in["cred"]) {
    if (!c.is_string()) return Status::InvalidArgument("claims.cred must hold strings");
    r.cred.push_back(c.get<std::string>());
  }
  TOANI_ASSIGN_OR_RETURN(MintedToken t, Mint(r));
  return json{{"token", std::move(t.token)}, {"jti", std::move(t.jti)}, {"exp", std::move(t.exp)}};
}

StatusOr<std::string> CanonicalClaims(const MintRequest& r, const std::string& jti,
                                      const std::string& iat, const std::string& exp,
                                      const std::string& measurement) {
  std::string out;
  out.reserve(512);
  Status st = Status::Ok();
  const auto str = [&](const char* name, std::string_view value) {
    out += name;
    if (st.ok()) st = AppendJsonString(value, &out);
  };
  str("{\"action\":", r.action);
  out += ",\"cred\":[";
  for (size_t i = 0; i < r.cred.size(); ++i) {
    if (i > 0) out += ',';
    if (st.ok()) st = AppendJsonString(r.cred[i], &out);
  }
  out += ']';
  str(",\"exp\":", exp);
  TOANI_ASSIGN_OR_RETURN(std::string hitl, TryCanonicalizeJson(r.hitl));
  out += ",\"hitl\":";
  out += hitl;
  str(",\"iat\":", iat);
  str(",\"iss\":", "toani-keyd");
  str(",\"jti\":", jti);
  str(",\"nbf\":", iat);
  str(",\"params_hash\":", r.params_hash);
  str(",\"policy_id\":", r.policy_id);
  out += ",\"policy_version\":";
  out += FormatJsonNumber(static_cast<double>(r.policy_version));
  str(",\"risk_tier\":", r.risk_tier);
  std::string sub = r.tenant + ":" + r.agent + ":" + r.user;
  str(",\"sub\":", sub);
  SecureWipe(sub.data(), sub.size());
  str(",\"tee\":{\"measurement\":", measurement);
  out += ",\"simulated\":true}}";
  if (!st.ok()) return st;
  return out;
}

StatusOr<MintedToken> KeyService::Mint(const MintRequest& r) {
  if (r.ttl_seconds < 1 || r.ttl_seconds > kMaxTtlSeconds)
    return Status::InvalidArgument("ttl_seconds must be 1..3600");
  if (r.tenant.find(':') != std::string::npos || r.agent.find(':') != std::string::npos) {
    return Status::InvalidArgument("tenant and agent names cannot contain ':'");
  }
  if (!r.hitl.is_object()) return Status::InvalidArgument("claims.hitl must be an object");
  uint8_t jti_raw[16];
  randombytes_buf(jti_raw, sizeof jti_raw);
  MintedToken out;
  out.jti = Base64UrlEncode(std::span<const uint8_t>(jti_raw, 16));
  const SysTime now = opts_.clock();
  const std::string iat = FormatRfc3339(now);
  out.exp = FormatRfc3339(now + std::chrono::seconds(r.ttl_seconds));
  TOANI_ASSIGN_OR_RETURN(const TenantKey* tk, keyring_->Current(r.tenant));
  auto payload = CanonicalClaims(r, out.jti, iat, out.exp, opts_.measurement);
  if (!payload.ok()) return Status::InvalidArgument("claims are not valid JSON text");
  const std::string footer = "{\"kid\":" + json(tk->kid).dump() + "}";
  TOANI_ASSIGN_OR_RETURN(std::string implicit, ImplicitAssertion(opts_.measurement, r.tenant));
  TOANI_ASSIGN_OR_RETURN(out.token,
                         crypto::PasetoV4LocalEncrypt(tk->token_key, *payload, footer, implicit));
  return out;
}

StatusOr<json> KeyService::VerifyToken(const std::string& tenant, const std::string& token) {
  const Status invalid = Status::Unauthenticated("token is not valid");
  if (token.size() > 16 * 1024) return invalid;
  auto footer = crypto::PasetoUntrustedFooter(token);
  if (!footer.ok()) return invalid;
  auto fj = json::parse(*footer, nullptr, false);
  if (fj.is_discarded() || !fj.is_object() || fj.size() != 1 || !fj.contains("kid") ||
      !fj["kid"].is_string()) {
    return Status::Unauthenticated("token footer must be {\"kid\": ...}");
  }
  const TenantKey* tk = keyring_->ByKid(tenant, fj["kid"].get<std::string>());
  if (tk == nullptr)
    return Status::Unauthenticated("token key id is not one of this tenant's keys");
  auto implicit = ImplicitAssertion(opts_.measurement, tenant);
  if (!implicit.ok()) return invalid;
  auto msg = crypto::PasetoV4LocalDecrypt(tk->token_key, token, *implicit);
  if (!msg.ok() || msg->footer != *footer) return invalid;
  auto claims = json::parse(msg->payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return invalid;
  if (!claims.contains("iss") || claims["iss"] != "toani-keyd")
    return Status::Unauthenticated("token issuer is wrong");
  if (!claims.contains("sub") || !claims["sub"].is_string() ||
      claims["sub"].get<std::string>().rfind(tenant + ":", 0) != 0) {
    return Status::Unauthenticated("token is for another tenant");
  }
  if (!claims.contains("jti") || !claims["jti"].is_string() ||
      claims["jti"].get<std::string>().size() != 22) {
    return Status::Unauthenticated("token jti is malformed");
  }
  if (!claims.contains("cred") || !claims["cred"].is_array())
    return Status::Unauthenticated("token cred is malformed");
  const json& tee = claims.value("tee", json());
  if (!tee.is_object() || tee.value("measurement", "") != opts_.measurement) {
    return Status::Unauthenticated("token was minted by another keyd build");
  }
  TOANI_ASSIGN_OR_RETURN(SysTime exp, Time(claims, "exp"));
  TOANI_ASSIGN_OR_RETURN(SysTime iat, Time(claims, "iat"));
  TOANI_ASSIGN_OR_RETURN(SysTime nbf, Time(claims, "nbf"));
  SysTime now = opts_.clock();
  if (exp <= now) return Status::Unauthenticated("token has expired");
  if (nbf > now) return Status::Unauthenticated("token is not valid yet");
  if (iat > now + std::chrono::seconds(60))
    return Status::Unauthenticated("token is issued in the future");
  if (exp <= iat || exp - iat > std::chrono::seconds(kMaxTtlSeconds)) {
    return Status::Unauthenticated("token lifetime is out of bounds");
  }
  return claims;
}

StatusOr<json> KeyService::VerifyTokenOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(std::string token, ReqStr(req, "token", 16 * 1024));
  TOANI_ASSIGN_OR_RETURN(json claims, VerifyToken(tenant, token));
  return json{{"claims", claims}};
}

StatusOr<json> KeyService::ReleaseCredential(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(std::string token, ReqStr(req, "token", 16 * 1024));
  TOANI_ASSIGN_OR_RETURN(std::string cred_id, ReqStr(req, "credential_id", 128));
  TOANI_ASSIGN_OR_RETURN(int64_t version, ReqInt(req, "version"));
  TOANI_ASSIGN_OR_RETURN(std::string blob, ReqStr(req, "blob", 128 * 1024));
  TOANI_ASSIGN_OR_RETURN(std::string rpk_b64, ReqStr(req, "recipient_public_key", 64));
  auto rpk = Base64UrlDecodeStrict(rpk_b64);
  if (!rpk.ok() || rpk->size() != crypto_box_PUBLICKEYBYTES) {
    return Status::InvalidArgument("recipient_public_key must be an X25519 public key");
  }
  TOANI_ASSIGN_OR_RETURN(json claims, VerifyToken(tenant, token));
  bool named = false;
  for (const auto& c : claims["cred"])
    named = named || (c.is_string() && c.get<std::string>() == cred_id);
  if (!named) return Status::PermissionDenied("token does not name credential " + cred_id);
  // Open before consuming the jti, so a bad blob does not burn the token.
  TOANI_ASSIGN_OR_RETURN(SecretBytes plain, OpenBlob(tenant, cred_id, version, blob));
  const std::string jti = claims["jti"];
  TOANI_ASSIGN_OR_RETURN(SysTime exp, Time(claims, "exp"));
  SysTime now = opts_.clock();
  for (auto it = released_jti_.begin(); it != released_jti_.end();) {
    it = (it->second <= now) ? released_jti_.erase(it) : std::next(it);
  }
  if (!released_jti_.emplace(jti, exp).second) {
    return Status::AlreadyExists("credential already released for this token");
  }
  Bytes sealed(plain.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), plain.UnsafeBytes().data(), plain.size(), rpk->data());
  return json{{"sealed", Base64UrlEncode(sealed)}};
}

}  // namespace toani::keyd

namespace toani::keyd {

// Checks a Standard Webhooks callback (docs/formats.md §8) against a stored whsec_
// credential: the secret never leaves keyd. Uses keyd's own clock for freshness.
StatusOr<json> KeyService::VerifyWebhookOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(std::string cred_id, ReqStr(req, "credential_id", 128));
  TOANI_ASSIGN_OR_RETURN(int64_t version, ReqInt(req, "version"));
  TOANI_ASSIGN_OR_RETURN(std::string blob, ReqStr(req, "blob", 128 * 1024));
  if (!req.contains("body") || !req["body"].is_string()) {
    return Status::InvalidArgument("missing string field 'body'");
  }
  auto str = [&](const char* k) {
    return req.contains(k) && req[k].is_string() ? req[k].get<std::string>() : std::string();
  };
  const std::string id = str("webhook_id"), ts = str("webhook_timestamp"),
                    sig = str("webhook_signature");
  TOANI_ASSIGN_OR_RETURN(SecretBytes plain, OpenBlob(tenant, cred_id, version, blob));
  auto key = ParseWebhookSecret(plain.UnsafeView());
  if (!key.ok()) return Status::FailedPrecondition("credential is not a whsec_ webhook secret");
  const int64_t now = UnixSeconds(opts_.clock());
  TOANI_RETURN_IF_ERROR(
      VerifyWebhook(*key, {id, ts, sig}, req["body"].get_ref<const std::string&>(), now));
  return json{{"ok", true}};
}

// Signs an approval announcement (docs/formats.md §11) for the approval webhook with a
// stored whsec_ credential: the secret never leaves keyd. keyd sets the timestamp from
// its own clock. Only approval announcements are signed (webhook-id "msg_apr_…", a
// JSON object body of type "approval.requested"), so this op cannot be used to sign
// arbitrary messages with a connector's callback secret.
StatusOr<json> KeyService::SignApprovalWebhookOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(std::string cred_id, ReqStr(req, "credential_id", 128));
  TOANI_ASSIGN_OR_RETURN(int64_t version, ReqInt(req, "version"));
  TOANI_ASSIGN_OR_RETURN(std::string blob, ReqStr(req, "blob", 128 * 1024));
  TOANI_ASSIGN_OR_RETURN(std::string id, ReqStr(req, "webhook_id", kWebhookMaxIdBytes));
  TOANI_ASSIGN_OR_RETURN(std::string body, ReqStr(req, "body", 64 * 1024));
  if (!id.starts_with("msg_apr_")) {
    return Status::InvalidArgument(
        "webhook_id must be msg_apr_…: only approval announcements are signed");
  }
  const json doc = json::parse(body, nullptr, false);
  if (!doc.is_object() || doc.value("type", "") != "approval.requested" || !doc.contains("data") ||
      !doc["data"].is_object() || "msg_" + doc["data"].value("approval_id", "") != id) {
    return Status::InvalidArgument(
        "body must be an approval.requested announcement for the approval the webhook-id names");
  }
  TOANI_ASSIGN_OR_RETURN(SecretBytes plain, OpenBlob(tenant, cred_id, version, blob));
  auto key = ParseWebhookSecret(plain.UnsafeView());
  if (!key.ok()) return Status::FailedPrecondition("credential is not a whsec_ webhook secret");
  const int64_t now = UnixSeconds(opts_.clock());
  return json{{"webhook_id", id},
              {"webhook_timestamp", std::to_string(now)},
              {"webhook_signature", SignWebhook(*key, id, now, body)}};
}

}  // namespace toani::keyd
