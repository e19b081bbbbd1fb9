#include "keyd/key_service.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/aead.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "crypto/paseto.h"
#include "keyd/protocol.h"

namespace toani::keyd {
namespace {

using nlohmann::json;

constexpr int kMaxTtlSeconds = 3600;

std::span<const uint8_t> B(std::string_view s) { return AsBytes(s); }

StatusOr<std::string> Str(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty()) {
    return Status::InvalidArgument(std::string("missing string field '") + key + "'");
  }
  return j[key].get<std::string>();
}

StatusOr<int64_t> Int(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer()) {
    return Status::InvalidArgument(std::string("missing integer field '") + key + "'");
  }
  return j[key].get<int64_t>();
}

StatusOr<SecretBytes> LoadOrCreateDevRoot(const std::string& dir) {
  ::mkdir(dir.c_str(), 0700);
  std::string path = dir + "/dev-root.key";
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    SecretBytes k(32);
    size_t n = std::fread(k.UnsafeMutableData(), 1, 32, f);
    std::fclose(f);
    if (n != 32) return Status::FailedPrecondition("keyd: dev root key file is corrupt: " + path);
    return k;
  }
  SecretBytes k = SecretBytes::Random(32);
  mode_t old = ::umask(0077);
  FILE* f = std::fopen(path.c_str(), "wbx");
  ::umask(old);
  if (f == nullptr) return Status::Unavailable("keyd: cannot create dev root key at " + path);
  bool ok = std::fwrite(k.UnsafeBytes().data(), 1, 32, f) == 32;
  ok = (std::fflush(f) == 0) && ok && (::fsync(fileno(f)) == 0);
  std::fclose(f);
  if (!ok) return Status::Unavailable("keyd: cannot write dev root key");
  return k;
}

std::string CredentialAd(const std::string& tenant, const std::string& cred_id, int64_t version) {
  std::string ad = "toani.credential.v1";
  ad.push_back('\0');
  ad += tenant;
  ad.push_back('\0');
  ad += cred_id;
  ad.push_back('\0');
  ad += std::to_string(version);
  return ad;
}

SecretBytes DataKeyFromL2(const SecretBytes& l2, std::span<const uint8_t> salt) {
  return crypto::HkdfSha256(l2, salt, B("data-key"), 32);
}

}  // namespace

KeyService::KeyService(KeydOptions opts, SecretBytes root) : opts_(std::move(opts)), root_(std::move(root)) {
  // The intake key pair is derived from L0 so clients can keep sealing to the
  // same public key across keyd restarts.
  SecretBytes seed = crypto::HkdfSha256(root_, B("toani.intake"), B("x25519-intake"), crypto_box_SEEDBYTES);
  uint8_t pk[crypto_box_PUBLICKEYBYTES];
  intake_sk_ = SecretBytes(crypto_box_SECRETKEYBYTES);
  crypto_box_seed_keypair(pk, intake_sk_.UnsafeMutableData(), seed.UnsafeBytes().data());
  intake_pk_b64_ = Base64UrlEncode(std::span<const uint8_t>(pk, sizeof pk));
}

StatusOr<std::unique_ptr<KeyService>> KeyService::Open(KeydOptions opts) {
  if (sodium_init() < 0) return Status::Internal("keyd: libsodium failed to initialise");
  if (!opts.dev) {
    return Status::FailedPrecondition("keyd: only --dev custody exists yet (Shamir unseal is issue 3)");
  }
  if (opts.state_dir.empty()) return Status::InvalidArgument("keyd: state_dir is required");
  TOANI_ASSIGN_OR_RETURN(SecretBytes root, LoadOrCreateDevRoot(opts.state_dir));
  return std::unique_ptr<KeyService>(new KeyService(std::move(opts), std::move(root)));
}

StatusOr<std::string> KeyService::K4Lid(const SecretBytes& key) {
  if (key.size() != 32) return Status::InvalidArgument("k4.lid: key must be 32 bytes");
  std::string h = "k4.lid.";
  std::string p = "k4.local." + Base64UrlEncode(key.UnsafeBytes());
  std::string msg = h + p;
  uint8_t d[33];
  crypto_generichash(d, sizeof d, reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), nullptr, 0);
  SecureWipe(p.data(), p.size());
  SecureWipe(msg.data(), msg.size());
  return h + Base64UrlEncode(std::span<const uint8_t>(d, sizeof d));
}

SecretBytes KeyService::TenantKey(const std::string& tenant) const {
  return crypto::HkdfSha256(root_, B("toani.l1"), B(tenant), 32);
}

SecretBytes KeyService::TokenKey(const std::string& tenant) const {
  return crypto::HkdfSha256(TenantKey(tenant), {}, B("action-token"), 32);
}

json KeyService::Handle(const json& request) {
  std::string op = request.is_object() ? request.value("op", "") : "";
  StatusOr<json> r = Status::InvalidArgument("keyd: unknown op '" + op + "'");
  if (op == "status") r = StatusOp();
  else if (op == "credential.import") r = ImportCredential(request);
  else if (op == "token.mint") r = MintToken(request);
  else if (op == "token.verify") r = VerifyTokenOp(request);
  else if (op == "credential.release") r = ReleaseCredential(request);
  if (!r.ok()) return ErrorReply(r.status());
  json out = std::move(r).value();
  out["ok"] = true;
  return out;
}

StatusOr<json> KeyService::StatusOp() {
  return json{{"intake_public_key", intake_pk_b64_}, {"measurement", opts_.measurement}, {"simulated", true}};
}

StatusOr<json> KeyService::ImportCredential(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, Str(req, "tenant"));
  TOANI_ASSIGN_OR_RETURN(std::string cred_id, Str(req, "credential_id"));
  TOANI_ASSIGN_OR_RETURN(int64_t version, Int(req, "version"));
  TOANI_ASSIGN_OR_RETURN(std::string sealed_b64, Str(req, "sealed"));
  if (version < 1) return Status::InvalidArgument("version must be >= 1");
  auto sealed = Base64UrlDecodeStrict(sealed_b64);
  if (!sealed.ok() || sealed->size() <= crypto_box_SEALBYTES) {
    return Status::InvalidArgument("sealed: not a sealed box");
  }
  SecretBytes plain(sealed->size() - crypto_box_SEALBYTES);
  uint8_t pk[crypto_box_PUBLICKEYBYTES];
  crypto_scalarmult_base(pk, intake_sk_.UnsafeBytes().data());
  if (crypto_box_seal_open(plain.UnsafeMutableData(), sealed->data(), sealed->size(), pk,
                           intake_sk_.UnsafeBytes().data()) != 0) {
    return Status::InvalidArgument("sealed: cannot open (was it sealed to this keyd's intake key?)");
  }
  SecretBytes l1 = TenantKey(tenant);
  std::string info = "credential";
  info.push_back('\0');
  info += std::to_string(version);
  SecretBytes l2 = crypto::HkdfSha256(l1, B(cred_id), B(info), 32);
  uint8_t salt[32];
  randombytes_buf(salt, sizeof salt);
  SecretBytes l3 = DataKeyFromL2(l2, std::span<const uint8_t>(salt, 32));
  TOANI_ASSIGN_OR_RETURN(Bytes ct, crypto::AesGcmSeal(l3, plain.UnsafeBytes(), B(CredentialAd(tenant, cred_id, version))));
  Bytes blob(salt, salt + 32);
  blob.insert(blob.end(), ct.begin(), ct.end());
  SecretBytes fp_key = crypto::HkdfSha256(l1, {}, B("fingerprint"), 32);
  auto fp = crypto::HmacSha256(fp_key, plain.UnsafeBytes());
  return json{{"blob", "c1." + Base64UrlEncode(blob)},
              {"fingerprint", "hmac-sha256:" + HexEncode(std::span<const uint8_t>(fp.data(), fp.size()))}};
}

StatusOr<SecretBytes> KeyService::OpenBlob(const std::string& tenant, const std::string& cred_id, int64_t version,
                                           const std::string& blob) const {
  if (blob.rfind("c1.", 0) != 0) return Status::InvalidArgument("credential blob: unknown format");
  auto raw = Base64UrlDecodeStrict(std::string_view(blob).substr(3));
  if (!raw.ok() || raw->size() < 32 + 12 + 16) return Status::InvalidArgument("credential blob: truncated");
  std::string info = "credential";
  info.push_back('\0');
  info += std::to_string(version);
  SecretBytes l2 = crypto::HkdfSha256(TenantKey(tenant), B(cred_id), B(info), 32);
  SecretBytes l3 = DataKeyFromL2(l2, std::span<const uint8_t>(raw->data(), 32));
  return crypto::AesGcmOpen(l3, std::span<const uint8_t>(raw->data() + 32, raw->size() - 32),
                            B(CredentialAd(tenant, cred_id, version)));
}

StatusOr<json> KeyService::MintToken(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, Str(req, "tenant"));
  TOANI_ASSIGN_OR_RETURN(std::string agent, Str(req, "agent"));
  TOANI_ASSIGN_OR_RETURN(std::string user, Str(req, "user"));
  TOANI_ASSIGN_OR_RETURN(int64_t ttl, Int(req, "ttl_seconds"));
  if (ttl < 1 || ttl > kMaxTtlSeconds) return Status::InvalidArgument("ttl_seconds must be 1..3600");
  if (!req.contains("claims") || !req["claims"].is_object()) return Status::InvalidArgument("missing object 'claims'");
  const json& in = req["claims"];
  for (const char* k : {"policy_id", "action", "params_hash"}) {
    if (!in.contains(k) || !in[k].is_string()) return Status::InvalidArgument(std::string("claims.") + k + " missing");
  }
  if (!in.contains("cred") || !in["cred"].is_array()) return Status::InvalidArgument("claims.cred must be an array");
  uint8_t jti_raw[16];
  randombytes_buf(jti_raw, sizeof jti_raw);
  std::string jti = Base64UrlEncode(std::span<const uint8_t>(jti_raw, 16));
  SysTime now = opts_.clock();
  SysTime exp = now + std::chrono::seconds(ttl);
  json claims = {{"jti", jti},
                 {"iss", "toani-keyd"},
                 {"sub", tenant + ":" + agent + ":" + user},
                 {"iat", FormatRfc3339(now)},
                 {"exp", FormatRfc3339(exp)},
                 {"policy_id", in["policy_id"]},
                 {"policy_version", in.value("policy_version", 0)},
                 {"action", in["action"]},
                 {"params_hash", in["params_hash"]},
                 {"risk_tier", in.value("risk_tier", "low")},
                 {"hitl", in.value("hitl", json{{"confirmed", false}, {"approvers", json::array()}, {"proof", nullptr}})},
                 {"cred", in["cred"]},
                 {"tee", {{"measurement", opts_.measurement}, {"simulated", true}}}};
  SecretBytes key = TokenKey(tenant);
  TOANI_ASSIGN_OR_RETURN(std::string kid, K4Lid(key));
  std::string footer = json{{"kid", kid}}.dump();
  std::string implicit = CanonicalizeJson(json{{"tee", opts_.measurement}, {"tenant", tenant}});
  TOANI_ASSIGN_OR_RETURN(std::string token, crypto::PasetoV4LocalEncrypt(key, claims.dump(), footer, implicit));
  return json{{"token", token}, {"jti", jti}, {"exp", FormatRfc3339(exp)}};
}

StatusOr<json> KeyService::VerifyToken(const std::string& tenant, const std::string& token) {
  const Status invalid = Status::Unauthenticated("token is not valid");
  SecretBytes key = TokenKey(tenant);
  TOANI_ASSIGN_OR_RETURN(std::string kid, K4Lid(key));
  auto footer = crypto::PasetoUntrustedFooter(token);
  if (!footer.ok()) return invalid;
  auto fj = json::parse(*footer, nullptr, false);
  if (fj.is_discarded() || !fj.is_object() || fj.value("kid", "") != kid) {
    return Status::Unauthenticated("token key id does not match this tenant's key");
  }
  std::string implicit = CanonicalizeJson(json{{"tee", opts_.measurement}, {"tenant", tenant}});
  auto msg = crypto::PasetoV4LocalDecrypt(key, token, implicit);
  if (!msg.ok()) return invalid;
  if (msg->footer != *footer) return invalid;
  auto claims = json::parse(msg->payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return invalid;
  if (claims.value("iss", "") != "toani-keyd") return Status::Unauthenticated("token issuer is wrong");
  if (claims.value("sub", "").rfind(tenant + ":", 0) != 0) return Status::Unauthenticated("token is for another tenant");
  auto exp = ParseRfc3339(claims.value("exp", ""));
  auto iat = ParseRfc3339(claims.value("iat", ""));
  if (!exp.ok() || !iat.ok()) return Status::Unauthenticated("token times are malformed");
  SysTime now = opts_.clock();
  if (*exp <= now) return Status::Unauthenticated("token has expired");
  if (*iat > now + std::chrono::seconds(60)) return Status::Unauthenticated("token is issued in the future");
  return claims;
}

StatusOr<json> KeyService::VerifyTokenOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, Str(req, "tenant"));
  TOANI_ASSIGN_OR_RETURN(std::string token, Str(req, "token"));
  TOANI_ASSIGN_OR_RETURN(json claims, VerifyToken(tenant, token));
  return json{{"claims", claims}};
}

StatusOr<json> KeyService::ReleaseCredential(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, Str(req, "tenant"));
  TOANI_ASSIGN_OR_RETURN(std::string token, Str(req, "token"));
  TOANI_ASSIGN_OR_RETURN(std::string cred_id, Str(req, "credential_id"));
  TOANI_ASSIGN_OR_RETURN(int64_t version, Int(req, "version"));
  TOANI_ASSIGN_OR_RETURN(std::string blob, Str(req, "blob"));
  TOANI_ASSIGN_OR_RETURN(std::string rpk_b64, Str(req, "recipient_public_key"));
  auto rpk = Base64UrlDecodeStrict(rpk_b64);
  if (!rpk.ok() || rpk->size() != crypto_box_PUBLICKEYBYTES) {
    return Status::InvalidArgument("recipient_public_key must be an X25519 public key");
  }
  TOANI_ASSIGN_OR_RETURN(json claims, VerifyToken(tenant, token));
  bool named = false;
  for (const auto& c : claims["cred"]) named = named || (c.is_string() && c.get<std::string>() == cred_id);
  if (!named) return Status::PermissionDenied("token does not name credential " + cred_id);
  std::string jti = claims.value("jti", "");
  auto exp = ParseRfc3339(claims.value("exp", ""));
  {
    std::lock_guard<std::mutex> lock(mu_);
    SysTime now = opts_.clock();
    for (auto it = released_jti_.begin(); it != released_jti_.end();) {
      it = (it->second <= now) ? released_jti_.erase(it) : std::next(it);
    }
    if (!released_jti_.emplace(jti, *exp).second) {
      return Status::AlreadyExists("credential already released for this token");
    }
  }
  TOANI_ASSIGN_OR_RETURN(SecretBytes plain, OpenBlob(tenant, cred_id, version, blob));
  Bytes sealed(plain.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), plain.UnsafeBytes().data(), plain.size(), rpk->data());
  return json{{"sealed", Base64UrlEncode(sealed)}};
}

}  // namespace toani::keyd
