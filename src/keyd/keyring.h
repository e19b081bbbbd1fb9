// Tenant keys (L1): random 256-bit, versioned, persisted only wrapped under L0 in
// STATE/keyring.json (docs/formats.md §6). Unwrapped keys and the keys derived from
// them (token key, fingerprint key) live in secret memory while keyd is unsealed.
// Not thread-safe: KeyService serialises calls.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "common/secret.h"
#include "common/status.h"

namespace toani::keyd {

struct TenantKey {
  int version = 0;
  SecretBytes l1;
  SecretBytes token_key;        // HKDF(L1, "", "action-token")
  SecretBytes fingerprint_key;  // HKDF(L1, "", "fingerprint")
  std::string kid;              // PASERK k4.lid of token_key
};

class Keyring {
 public:
  // Reads and unwraps every key; FailedPrecondition if any fails to open under l0.
  static StatusOr<Keyring> Load(const std::string& path, const SecretBytes& l0);

  // The current key of a tenant, creating (and persisting) version 1 if there is none.
  StatusOr<const TenantKey*> Current(const std::string& tenant);
  // A given version; NotFound if the tenant has no such key.
  StatusOr<const TenantKey*> Version(const std::string& tenant, int version) const;
  // The key whose token key has this k4.lid, for this tenant; NotFound otherwise.
  const TenantKey* ByKid(const std::string& tenant, const std::string& kid) const;
  // Adds version current+1, persists it, and makes it current. Returns the new version.
  StatusOr<int> Rotate(const std::string& tenant);

 private:
  Keyring(std::string path, const SecretBytes* l0) : path_(std::move(path)), l0_(l0) {}
  Status AddVersion(const std::string& tenant, int version, SecretBytes l1,
                    const std::string& wrapped);
  Status Persist() const;

  std::string path_;
  const SecretBytes* l0_;  // owned by RootCustody, which outlives the keyring
  std::map<std::string, std::map<int, TenantKey>> keys_;
  std::map<std::string, std::map<int, std::string>> wrapped_;  // tenant → version → wrapped b64
};

// PASERK k4.lid of a v4.local key.
StatusOr<std::string> K4Lid(const SecretBytes& key);

}  // namespace toani::keyd
