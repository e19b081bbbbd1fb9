// Custody of the root key L0 (DESIGN.md §3, docs/formats.md §6).
//  - dev mode: L0 is the 32-byte file STATE/dev-root.key (0600), created on first start;
//  - Shamir mode: L0 exists only in keyd's secret memory. `Init` makes it and splits it
//    into N shares (threshold T); STATE/root.json keeps N, T, a root id and a key
//    check value (never L0). `Submit` takes shares one at a time; at T it combines
//    them, checks the result against the check value and unseals. `Rekey` makes new
//    shares for the same L0 from a quorum of the current ones.
// Not thread-safe: KeyService serialises calls.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/secret.h"
#include "common/status.h"
#include "crypto/shamir.h"

namespace toani::keyd {

struct UnsealProgress {
  bool sealed = true;
  int progress = 0;   // shares accepted so far
  int threshold = 0;  // 0 when not initialised
  int shares = 0;
};

class RootCustody {
 public:
  // Dev: loads or creates STATE/dev-root.key and is unsealed at once.
  static StatusOr<RootCustody> OpenDev(const std::string& state_dir);
  // Shamir: reads STATE/root.json if it exists; always starts sealed.
  static StatusOr<RootCustody> OpenShamir(const std::string& state_dir);

  bool dev() const { return dev_; }
  bool initialized() const { return dev_ || threshold_ > 0; }
  bool sealed() const { return root_.empty(); }
  UnsealProgress Progress() const;
  const SecretBytes& root() const { return root_; }  // precondition: !sealed()

  // FailedPrecondition if dev or already initialised. Returns the share texts
  // ("ts1." || base64url(...)), which exist nowhere else afterwards. Leaves keyd sealed.
  StatusOr<std::vector<SecretBytes>> Init(int shares, int threshold);
  // InvalidArgument: malformed share, share of another root, repeated share.
  // PermissionDenied: T shares that do not reconstruct L0 (progress is reset).
  StatusOr<UnsealProgress> Submit(const SecretBytes& share_text);
  void ResetProgress() { pending_.clear(); }
  // New shares for the same L0 from at least T current shares (all at once).
  StatusOr<std::vector<SecretBytes>> Rekey(const std::vector<SecretBytes>& current, int shares,
                                           int threshold);

 private:
  RootCustody() = default;
  StatusOr<crypto::ShamirShare> Decode(const SecretBytes& text) const;
  StatusOr<SecretBytes> Reconstruct(const std::vector<crypto::ShamirShare>& shares) const;
  StatusOr<std::vector<SecretBytes>> SplitAndPersist(const SecretBytes& l0, int shares,
                                                     int threshold);

  bool dev_ = false;
  std::string state_dir_;
  int shares_ = 0, threshold_ = 0;
  std::string root_id_;  // 8 random bytes, raw
  std::string check_;    // HMAC-SHA256(L0, "toani.l0.check.v1"), raw
  SecretBytes root_;     // L0, empty while sealed
  std::vector<crypto::ShamirShare> pending_;
};

}  // namespace toani::keyd
