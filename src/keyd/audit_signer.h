// keyd's audit signing key (docs/audit-format.md §1, §6): an Ed25519 key derived from L0
// that signs audit entries and checkpoints, and the daily-salted user references.
// The server asks; keyd checks what it is asked to sign. Thread-safe.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/secret.h"
#include "common/status.h"

namespace toani::keyd {

class AuditSigner {
 public:
  using TenantKeyFn = std::function<StatusOr<SecretBytes>(const std::string& tenant)>;
  // `root` is L0; `tenant_key` returns the tenant's current L1 (for user references).
  AuditSigner(const SecretBytes& root, TenantKeyFn tenant_key);

  static bool Handles(const std::string& op) { return op.rfind("audit.", 0) == 0; }
  // Dispatches audit.public_key, audit.sign_checkpoint.
  StatusOr<nlohmann::json> Handle(const std::string& op, const nlohmann::json& req);
  // The binary audit.sign_batch (docs/formats.md §1.1) and audit.sign_batch_next (§1.2)
  // frames: returns the reply frame. Called one frame at a time (keyd's loop).
  StatusOr<std::string> SignBatch(std::string_view frame);

 private:
  StatusOr<nlohmann::json> SignCheckpoint(const nlohmann::json& req);
  StatusOr<std::string> UserRef(const std::string& tenant, const std::string& day,
                                const std::string& user);

  SecretBytes sk_;  // crypto_sign_SECRETKEYBYTES
  std::array<uint8_t, 32> pk_{};
  std::string name_, vkey_;
  uint32_t key_id_ = 0;
  TenantKeyFn tenant_key_;
  std::mutex mu_;
  bool signed_any_ = false;  // the last checkpoint signed in this run, to refuse rollbacks
  uint64_t last_size_ = 0;
  std::string last_root_;
  // The end of the last batch signed (either frame type), which audit.sign_batch_next
  // continues; unset until a batch is signed. A refused batch leaves it unchanged.
  bool chain_set_ = false;
  std::array<uint8_t, 32> chain_leaf_{};
  uint64_t chain_next_index_ = 0;
};

class Keyring;
// A copy of the tenant's current L1 (the keyring creates it on first use).
StatusOr<SecretBytes> CurrentL1(Keyring* keyring, const std::string& tenant);

}  // namespace toani::keyd
