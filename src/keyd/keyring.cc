#include "keyd/keyring.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "keyd/file_util.h"

namespace toani::keyd {
namespace {

using nlohmann::json;

std::string WrapAd(const std::string& tenant, int version) {
  std::string ad = "toani.l1.v1";
  ad.push_back('\0');
  ad += tenant;
  ad.push_back('\0');
  ad += std::to_string(version);
  return ad;
}

}  // namespace

StatusOr<std::string> K4Lid(const SecretBytes& key) {
  if (key.size() != 32) return Status::InvalidArgument("k4.lid: key must be 32 bytes");
  // PASERK: h = "k4.lid."; d = BLAKE2b-264(h || "k4.local." || base64url(key)).
  const std::string h = "k4.lid.";
  const size_t b64_len = sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  SecretBytes b64(b64_len);
  sodium_bin2base64(reinterpret_cast<char*>(b64.UnsafeMutableData()), b64_len,
                    key.UnsafeBytes().data(), 32, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 33);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(h.data()), h.size());
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>("k4.local."), 9);
  crypto_generichash_update(&st, b64.UnsafeBytes().data(), b64_len - 1);  // without NUL
  uint8_t d[33];
  crypto_generichash_final(&st, d, sizeof d);
  sodium_memzero(&st, sizeof st);
  return h + Base64UrlEncode(std::span<const uint8_t>(d, sizeof d));
}

StatusOr<Keyring> Keyring::Load(const std::string& path, const SecretBytes& l0) {
  Keyring k(path, &l0);
  auto text = ReadSmallFile(path, 16 << 20);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return k;
    return text.status();
  }
  auto doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("v", 0) != 1 ||
      !doc.contains("tenants") || !doc["tenants"].is_object()) {
    return Status::FailedPrecondition("keyd: keyring.json is malformed");
  }
  for (const auto& [tenant, t] : doc["tenants"].items()) {
    if (!t.is_object() || !t.contains("keys") || !t["keys"].is_object()) {
      return Status::FailedPrecondition("keyd: keyring.json is malformed");
    }
    for (const auto& [vtext, w] : t["keys"].items()) {
      int version = std::atoi(vtext.c_str());
      auto raw =
          w.is_string() ? Base64UrlDecodeStrict(w.get<std::string>()) : Status::InvalidArgument("");
      if (version < 1 || std::to_string(version) != vtext || !raw.ok()) {
        return Status::FailedPrecondition("keyd: keyring.json is malformed");
      }
      auto l1 = crypto::AesGcmOpen(l0, *raw, AsBytes(WrapAd(tenant, version)));
      if (!l1.ok() || l1->size() != 32) {
        return Status::FailedPrecondition("keyd: a tenant key does not open under this root key");
      }
      TOANI_RETURN_IF_ERROR(
          k.AddVersion(tenant, version, std::move(l1).value(), w.get<std::string>()));
    }
  }
  return k;
}

Status Keyring::AddVersion(const std::string& tenant, int version, SecretBytes l1,
                           const std::string& wrapped) {
  TenantKey tk;
  tk.version = version;
  tk.token_key = crypto::HkdfSha256(l1, {}, AsBytes("action-token"), 32);
  tk.fingerprint_key = crypto::HkdfSha256(l1, {}, AsBytes("fingerprint"), 32);
  TOANI_ASSIGN_OR_RETURN(tk.kid, K4Lid(tk.token_key));
  tk.l1 = std::move(l1);
  keys_[tenant][version] = std::move(tk);
  wrapped_[tenant][version] = wrapped;
  return Status::Ok();
}

Status Keyring::Persist() const {
  json tenants = json::object();
  for (const auto& [tenant, versions] : wrapped_) {
    json keys = json::object();
    for (const auto& [v, w] : versions) keys[std::to_string(v)] = w;
    tenants[tenant] = {{"current", versions.rbegin()->first}, {"keys", keys}};
  }
  return WriteFileAtomic(path_, json{{"v", 1}, {"tenants", tenants}}.dump() + "\n");
}

StatusOr<int> Keyring::Rotate(const std::string& tenant) {
  if (tenant.empty() || tenant.size() > 128) return Status::InvalidArgument("bad tenant name");
  int next = 1;
  if (auto it = keys_.find(tenant); it != keys_.end() && !it->second.empty()) {
    next = it->second.rbegin()->first + 1;
  }
  SecretBytes l1 = SecretBytes::Random(32);
  TOANI_ASSIGN_OR_RETURN(Bytes wrapped,
                         crypto::AesGcmSeal(*l0_, l1.UnsafeBytes(), AsBytes(WrapAd(tenant, next))));
  TOANI_RETURN_IF_ERROR(AddVersion(tenant, next, std::move(l1), Base64UrlEncode(wrapped)));
  Status st = Persist();
  if (!st.ok()) {  // never use a key that is not durably stored
    keys_[tenant].erase(next);
    wrapped_[tenant].erase(next);
    if (keys_[tenant].empty()) {
      keys_.erase(tenant);
      wrapped_.erase(tenant);
    }
    return st;
  }
  return next;
}

StatusOr<const TenantKey*> Keyring::Current(const std::string& tenant) {
  auto it = keys_.find(tenant);
  if (it == keys_.end() || it->second.empty()) TOANI_RETURN_IF_ERROR(Rotate(tenant).status());
  return &keys_[tenant].rbegin()->second;
}

StatusOr<const TenantKey*> Keyring::Version(const std::string& tenant, int version) const {
  auto it = keys_.find(tenant);
  if (it != keys_.end()) {
    if (auto v = it->second.find(version); v != it->second.end()) return &v->second;
  }
  return Status::NotFound("no tenant key version " + std::to_string(version));
}

const TenantKey* Keyring::ByKid(const std::string& tenant, const std::string& kid) const {
  auto it = keys_.find(tenant);
  if (it == keys_.end()) return nullptr;
  for (const auto& [v, k] : it->second) {
    if (k.kid == kid) return &k;
  }
  return nullptr;
}

}  // namespace toani::keyd
