// RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proof verification.
//   leaf  = SHA-256(0x00 || entry)
//   node  = SHA-256(0x01 || left || right)
//   MTH({}) = SHA-256("")
// Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
// All functions are pure and thread-safe; CompactRange is a value type (not synchronised).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"

namespace toani::audit {

using Hash = std::array<uint8_t, 32>;

Hash LeafHash(std::span<const uint8_t> entry);
Hash NodeHash(const Hash& left, const Hash& right);
// Root of the empty tree: SHA-256 of the empty string.
Hash EmptyRoot();

// An append-only running root: the roots of the perfect subtrees that make up a tree of
// size() leaves, largest (leftmost) first — one per set bit of size(). O(log n) memory.
class CompactRange {
 public:
  CompactRange() = default;

  // Restores a range saved with size()/state(). Returns InvalidArgument unless
  // state.size() equals the number of set bits in `size` (a file is untrusted input).
  static StatusOr<CompactRange> FromState(uint64_t size, std::vector<Hash> state);

  // Appends a leaf hash (already LeafHash()ed). Amortised O(1).
  void Append(const Hash& leaf);
  uint64_t size() const { return size_; }
  // MTH of the leaves appended so far; EmptyRoot() when size() == 0.
  Hash Root() const;
  const std::vector<Hash>& state() const { return state_; }

 private:
  uint64_t size_ = 0;
  std::vector<Hash> state_;
};

// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves with
// `root`. Returns Ok or InvalidArgument (index >= size, wrong proof length, mismatch).
Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf,
                       const std::vector<Hash>& proof, const Hash& root);

// Verifies that the tree of size1 with root1 is a prefix of the tree of size2 with
// root2. size1 == size2 needs an empty proof and equal roots. size1 == 0 is refused:
// every tree extends the empty tree, so such a "proof" proves nothing and is a misuse.
// Returns Ok or InvalidArgument.
Status VerifyConsistency(uint64_t size1, uint64_t size2, const std::vector<Hash>& proof,
                         const Hash& root1, const Hash& root2);

}  // namespace toani::audit
