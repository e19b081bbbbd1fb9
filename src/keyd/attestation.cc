#include "keyd/attestation.h"

#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/hash.h"

namespace toani::keyd {
namespace {

using nlohmann::json;

constexpr const char* kSimulatedSigner = "toani-simulated (no hardware root of trust)";

class SimulatedAttester : public Attester {
 public:
  explicit SimulatedAttester(std::string measurement)
      : measurement_(std::move(measurement)), sk_(crypto_sign_SECRETKEYBYTES) {
    crypto_sign_keypair(pk_, sk_.UnsafeMutableData());
  }

  StatusOr<json> Evidence(const json& public_keys, std::span<const uint8_t> nonce) override {
    if (nonce.size() < 16 || nonce.size() > 64) {
      return Status::InvalidArgument("attestation nonce must be 16..64 bytes");
    }
    if (!public_keys.is_object()) return Status::InvalidArgument("public_keys must be an object");
    json ev = {{"v", 1},
               {"backend", "simulated"},
               {"claims",
                {{"measurement", measurement_},
                 {"signer", kSimulatedSigner},
                 {"debug", false},
                 {"tcb_status", "simulated"},
                 {"simulated", true},
                 {"report_data", ReportData(public_keys, nonce)}}},
               {"public_keys", public_keys},
               {"nonce", Base64UrlEncode(nonce)},
               {"signing_key", Base64UrlEncode(std::span<const uint8_t>(pk_, sizeof pk_))}};
    std::string msg = "toani.attestation.simulated.v1\n" + CanonicalizeJson(ev);
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, AsBytes(msg).data(), msg.size(), sk_.UnsafeBytes().data());
    ev["signature"] = Base64UrlEncode(std::span<const uint8_t>(sig, sizeof sig));
    return ev;
  }

 private:
  std::string measurement_;
  uint8_t pk_[crypto_sign_PUBLICKEYBYTES];
  SecretBytes sk_;
};

class MultiVerifier : public Verifier {
 public:
  StatusOr<AttestationClaims> Verify(const json& evidence, std::span<const uint8_t> expected_nonce,
                                     const VerifyPolicy& policy) const override {
    if (!evidence.is_object() || !evidence.contains("backend") ||
        !evidence["backend"].is_string()) {
      return Status::InvalidArgument("attestation evidence is malformed");
    }
    const std::string backend = evidence["backend"];
    if (backend != "simulated") {
      return Status::FailedPrecondition("attestation backend '" + backend +
                                        "' is not supported by this build (only 'simulated')");
    }
    if (!policy.allow_simulated) {
      return Status::PermissionDenied(
          "keyd's attestation is simulated (no hardware TEE protects its keys); refusing it. "
          "Accept it explicitly with --allow-simulated (the default only in --dev)");
    }
    const json& c = evidence.value("claims", json());
    for (const char* k : {"measurement", "signer", "tcb_status", "report_data"}) {
      if (!c.is_object() || !c.contains(k) || !c[k].is_string()) {
        return Status::InvalidArgument(std::string("attestation claims lack '") + k + "'");
      }
    }
    if (!c.contains("simulated") || c["simulated"] != true || !c.contains("debug") ||
        !c["debug"].is_boolean()) {
      return Status::InvalidArgument("simulated evidence must say simulated: true");
    }
    auto pk = Base64UrlDecodeStrict(evidence.value("signing_key", ""));
    auto sig = Base64UrlDecodeStrict(evidence.value("signature", ""));
    if (!pk.ok() || pk->size() != crypto_sign_PUBLICKEYBYTES || !sig.ok() ||
        sig->size() != crypto_sign_BYTES) {
      return Status::InvalidArgument("attestation signature or key is malformed");
    }
    json unsigned_ev = evidence;
    unsigned_ev.erase("signature");
    auto canonical = TryCanonicalizeJson(unsigned_ev);  // untrusted: never abort on it
    if (!canonical.ok()) return Status::InvalidArgument("attestation evidence is malformed");
    std::string msg = "toani.attestation.simulated.v1\n" + *canonical;
    if (crypto_sign_verify_detached(sig->data(), AsBytes(msg).data(), msg.size(), pk->data()) !=
        0) {
      return Status::Unauthenticated("attestation evidence signature does not verify");
    }
    auto nonce = Base64UrlDecodeStrict(evidence.value("nonce", ""));
    if (!nonce.ok() || nonce->size() != expected_nonce.size() ||
        sodium_memcmp(nonce->data(), expected_nonce.data(), expected_nonce.size()) != 0) {
      return Status::Unauthenticated("attestation evidence does not carry our nonce (replayed?)");
    }
    const json& keys = evidence.value("public_keys", json());
    if (!keys.is_object() ||
        ReportData(keys, expected_nonce) != c["report_data"].get<std::string>()) {
      return Status::Unauthenticated("attestation report data does not bind the public keys");
    }
    if (!policy.expected_measurement.empty() && c["measurement"] != policy.expected_measurement) {
      return Status::PermissionDenied("keyd measurement is not the expected one");
    }
    AttestationClaims out;
    out.backend = backend;
    out.measurement = c["measurement"];
    out.signer = c["signer"];
    out.debug = c["debug"];
    out.tcb_status = c["tcb_status"];
    out.simulated = true;
    out.report_data = c["report_data"];
    out.public_keys = keys;
    return out;
  }
};

}  // namespace

std::string ReportData(const json& public_keys, std::span<const uint8_t> nonce) {
  return crypto::Sha256Hex(
      CanonicalizeJson(json{{"nonce", Base64UrlEncode(nonce)}, {"public_keys", public_keys}}));
}

std::unique_ptr<Attester> MakeSimulatedAttester(std::string measurement) {
  return std::make_unique<SimulatedAttester>(std::move(measurement));
}

std::unique_ptr<Verifier> MakeVerifier() { return std::make_unique<MultiVerifier>(); }

}  // namespace toani::keyd
