#include "audit/merkle.h"

#include <bit>

#include "crypto/hash.h"

namespace toani::audit {
namespace {

bool Equal(const Hash& a, const Hash& b) {
  // Roots and proofs are public: constant time is not needed here.
  return a == b;
}

}  // namespace

Hash LeafHash(std::span<const uint8_t> entry) {
  std::vector<uint8_t> buf;
  buf.reserve(entry.size() + 1);
  buf.push_back(0x00);
  buf.insert(buf.end(), entry.begin(), entry.end());
  return crypto::Sha256(buf);
}

Hash NodeHash(const Hash& left, const Hash& right) {
  std::array<uint8_t, 65> buf;
  buf[0] = 0x01;
  std::copy(left.begin(), left.end(), buf.begin() + 1);
  std::copy(right.begin(), right.end(), buf.begin() + 33);
  return crypto::Sha256(buf);
}

Hash EmptyRoot() { return crypto::Sha256({}); }

StatusOr<CompactRange> CompactRange::FromState(uint64_t size, std::vector<Hash> state) {
  if (state.size() != static_cast<size_t>(std::popcount(size))) {
    return Status::InvalidArgument("compact range: state does not match size");
  }
  CompactRange r;
  r.size_ = size;
  r.state_ = std::move(state);
  return r;
}

void CompactRange::Append(const Hash& leaf) {
  TOANI_CHECK(size_ < UINT64_MAX);
  state_.push_back(leaf);
  // Each trailing 1-bit of the old size is a perfect subtree the new leaf completes.
  for (uint64_t s = size_; (s & 1) != 0; s >>= 1) {
    const Hash right = state_.back();
    state_.pop_back();
    state_.back() = NodeHash(state_.back(), right);
  }
  ++size_;
}

Hash CompactRange::Root() const {
  if (state_.empty()) return EmptyRoot();
  Hash r = state_.back();
  for (size_t i = state_.size() - 1; i-- > 0;) r = NodeHash(state_[i], r);
  return r;
}

Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf,
                       const std::vector<Hash>& proof, const Hash& root) {
  if (index >= size) return Status::InvalidArgument("inclusion: index beyond tree size");
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) return Status::InvalidArgument("inclusion: proof too long");
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Status::InvalidArgument("inclusion: proof too short");
  if (!Equal(r, root)) return Status::InvalidArgument("inclusion: root mismatch");
  return Status::Ok();
}

Status VerifyConsistency(uint64_t size1, uint64_t size2, const std::vector<Hash>& proof,
                         const Hash& root1, const Hash& root2) {
  if (size1 == 0) return Status::InvalidArgument("consistency: size1 is zero");
  if (size2 < size1) return Status::InvalidArgument("consistency: size2 < size1");
  if (size1 == size2) {
    if (!proof.empty()) return Status::InvalidArgument("consistency: proof must be empty");
    if (!Equal(root1, root2)) return Status::InvalidArgument("consistency: root mismatch");
    return Status::Ok();
  }
  if (proof.empty()) return Status::InvalidArgument("consistency: empty proof");

  // RFC 9162 §2.1.4.2. When size1 is a power of two, the old root is itself a node of
  // the new tree and is the implicit first element of the path.
  std::vector<Hash> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(size1)) path.push_back(root1);
  path.insert(path.end(), proof.begin(), proof.end());

  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return Status::InvalidArgument("consistency: proof too long");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Status::InvalidArgument("consistency: proof too short");
  if (!Equal(fr, root1) || !Equal(sr, root2)) {
    return Status::InvalidArgument("consistency: root mismatch");
  }
  return Status::Ok();
}

}  // namespace toani::audit
