#include "policy/signing.h"

#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"

namespace toani::policy {
namespace {

using nlohmann::json;

constexpr std::string_view kPublicPrefix = "k4.public.";
constexpr std::string_view kSecretPrefix = "k4.secret.";
constexpr std::string_view kPidPrefix = "k4.pid.";

std::string PublicPaserk(const std::array<uint8_t, 32>& pk) {
  return std::string(kPublicPrefix) + Base64UrlEncode(pk);
}

// The 64-byte libsodium secret key of a "k4.secret." PASERK, checked against its seed.
StatusOr<SecretBytes> ParseSecretKey(const SecretBytes& paserk) {
  const std::string_view text = paserk.UnsafeView();
  const Status bad = Status::InvalidArgument("not a PASERK k4.secret key");
  if (text.substr(0, kSecretPrefix.size()) != kSecretPrefix) return bad;
  auto raw = Base64UrlDecodeStrict(text.substr(kSecretPrefix.size()));
  if (!raw.ok() || raw->size() != crypto_sign_SECRETKEYBYTES) {
    if (raw.ok()) SecureWipe(raw->data(), raw->size());
    return bad;
  }
  SecretBytes sk = SecretBytes::Copy(*raw);
  SecureWipe(raw->data(), raw->size());
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  SecretBytes check(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(pk, check.UnsafeMutableData(), sk.UnsafeBytes().data());
  if (!check.ConstantTimeEquals(sk)) return bad;
  return sk;
}

}  // namespace

PolicyKeyPair GeneratePolicyKey() {
  std::array<uint8_t, 32> pk{};
  SecretBytes sk(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(pk.data(), sk.UnsafeMutableData());
  std::string b64 = Base64UrlEncode(sk.UnsafeBytes());
  std::string text = std::string(kSecretPrefix) + b64;
  PolicyKeyPair out{SecretBytes::Copy(text), PublicPaserk(pk), PublicKeyId(pk)};
  SecureWipe(b64.data(), b64.size());
  SecureWipe(text.data(), text.size());
  return out;
}

StatusOr<std::array<uint8_t, 32>> ParsePublicKey(const std::string& paserk) {
  const Status bad = Status::InvalidArgument("not a PASERK k4.public key");
  if (paserk.rfind(kPublicPrefix, 0) != 0) return bad;
  auto raw = Base64UrlDecodeStrict(std::string_view(paserk).substr(kPublicPrefix.size()));
  if (!raw.ok() || raw->size() != 32) return bad;
  std::array<uint8_t, 32> pk{};
  std::copy(raw->begin(), raw->end(), pk.begin());
  return pk;
}

std::string PublicKeyId(const std::array<uint8_t, 32>& pk) {
  const std::string msg = std::string(kPidPrefix) + PublicPaserk(pk);
  uint8_t d[33];
  crypto_generichash(d, sizeof d, reinterpret_cast<const uint8_t*>(msg.data()), msg.size(),
                     nullptr, 0);
  return std::string(kPidPrefix) + Base64UrlEncode(std::span<const uint8_t>(d, sizeof d));
}

StatusOr<SignedPolicy> ParseSignedPolicy(const json& env) {
  if (!env.is_object()) return Status::InvalidArgument("a signed policy must be a JSON object");
  if (!env.contains("signatures") || !env.contains("policy")) {
    return Status::InvalidArgument(
        "policy is not signed: send {\"policy\": {...}, \"signatures\": [...]} (toani policy "
        "sign makes it)");
  }
  for (auto it = env.begin(); it != env.end(); ++it) {
    if (it.key() != "policy" && it.key() != "signatures")
      return Status::InvalidArgument("signed policy: unknown field '" + it.key() + "'");
  }
  SignedPolicy sp;
  sp.policy = env["policy"];
  if (!sp.policy.is_object()) return Status::InvalidArgument("signed policy: 'policy' must be an object");
  auto canon = TryCanonicalizeJson(sp.policy);
  if (!canon.ok()) return Status::InvalidArgument("signed policy: " + canon.status().message());
  sp.canonical = std::move(*canon);
  const json& sigs = env["signatures"];
  if (!sigs.is_array() || sigs.empty() || sigs.size() > 8)
    return Status::InvalidArgument("policy is not signed: 'signatures' must hold 1..8 signatures");
  for (const auto& s : sigs) {
    if (!s.is_object() || s.size() != 2 || !s.contains("keyid") || !s["keyid"].is_string() ||
        !s.contains("sig") || !s["sig"].is_string()) {
      return Status::InvalidArgument("signed policy: signatures are {\"keyid\": …, \"sig\": …}");
    }
    sp.signatures.push_back({s["keyid"], s["sig"]});
  }
  return sp;
}

StatusOr<json> SignPolicy(const json& doc_or_envelope, const SecretBytes& secret) {
  json env = doc_or_envelope;
  if (!(env.is_object() && env.contains("policy") && env.contains("signatures")))
    env = json{{"policy", doc_or_envelope}, {"signatures", json::array()}};
  if (!env["policy"].is_object()) return Status::InvalidArgument("policy must be a JSON object");
  auto canon = TryCanonicalizeJson(env["policy"]);
  if (!canon.ok()) return canon.status();
  TOANI_ASSIGN_OR_RETURN(SecretBytes sk, ParseSecretKey(secret));
  std::array<uint8_t, 32> pk{};
  std::copy(sk.UnsafeBytes().begin() + 32, sk.UnsafeBytes().end(), pk.begin());
  uint8_t sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const uint8_t*>(canon->data()),
                       canon->size(), sk.UnsafeBytes().data());
  const std::string kid = PublicKeyId(pk);
  json kept = json::array();
  for (const auto& s : env["signatures"]) {
    if (!(s.is_object() && s.value("keyid", "") == kid)) kept.push_back(s);  // re-sign replaces
  }
  kept.push_back({{"keyid", kid}, {"sig", Base64UrlEncode(std::span<const uint8_t>(sig, sizeof sig))}});
  env["signatures"] = kept;
  return env;
}

Status VerifyPolicySignature(const std::string& canonical, const PolicySignature& sig,
                             const std::array<uint8_t, 32>& pk) {
  const Status bad = Status::Unauthenticated("policy signature by " + sig.key_id + " does not verify");
  auto raw = Base64UrlDecodeStrict(sig.sig);
  if (!raw.ok() || raw->size() != crypto_sign_BYTES) return bad;
  if (crypto_sign_verify_detached(raw->data(), reinterpret_cast<const uint8_t*>(canonical.data()),
                                  canonical.size(), pk.data()) != 0) {
    return bad;
  }
  return Status::Ok();
}

}  // namespace toani::policy
