// The log's Merkle tree as C2SP tlog-tiles (c2sp.org/tlog-tiles, tile height 8): the
// hashes kept, the tiles served, the proofs derived from them, and entry bundles.
// docs/audit-format.md §4.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/merkle.h"
#include "common/status.h"

namespace toani::audit {

inline constexpr uint64_t kTileWidth = 256;

// "tile/<L>/<N>[.p/<W>]" or, with level < 0, "tile/entries/<N>[.p/<W>]"; width 256 = full.
std::string TilePath(int level, uint64_t n, uint64_t width);
struct TileRef {
  int level = 0;  // -1: entry bundle
  uint64_t n = 0;
  uint64_t width = kTileWidth;
};
// Parses the part of a path after "tile/". Strict: refuses anything TilePath would not emit.
StatusOr<TileRef> ParseTilePath(std::string_view path);

// The hashes behind the tiles: the leaf hashes and the complete-subtree hashes above them
// (tile level l holds those of 256^l leaves). Append-only. Not synchronised: the owner locks.
class TreeHashes {
 public:
  void Append(const Hash& leaf);
  // Forgets every leaf at index >= size (undoes appends that were not committed).
  void Truncate(uint64_t size);
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }

  // MTH of the first `size` leaves; InvalidArgument if size > size().
  StatusOr<Hash> RootAt(uint64_t size) const;
  // RFC 9162 §2.1.3.1 PATH(index, D[0:size]).
  StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const;
  // RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]); 0 < size1 <= size2 <= size().
  StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2) const;
  // The tile's bytes (width hashes, 32 bytes each) for a tree of `tree_size` leaves.
  // NotFound if the tile does not exist at that tree size.
  StatusOr<std::string> Tile(int level, uint64_t n, uint64_t width, uint64_t tree_size) const;
  // Full tiles that became complete when leaf `index` was appended (for storage).
  std::vector<std::pair<int, uint64_t>> TilesCompletedBy(uint64_t index) const;

 private:
  Hash Node(int height, uint64_t k) const;         // complete subtree node
  Hash Range(uint64_t begin, uint64_t end) const;  // MTH(D[begin:end])
  void Path(uint64_t m, uint64_t begin, uint64_t end, std::vector<Hash>* out) const;
  void SubProof(uint64_t m, uint64_t begin, uint64_t end, bool b, std::vector<Hash>* out) const;
  // levels_[j]: complete-subtree hashes at height 4j. Keeping every 4th height (not just
  // the tile heights 0, 8, 16…) costs 1/15 more memory and makes any node at most 15
  // hashes away, so a proof at 10^6 entries needs ~75 hashes instead of ~500.
  std::vector<std::vector<Hash>> levels_;
};

// Entry bundle: each entry as big-endian uint16 length || bytes.
StatusOr<std::string> EncodeEntryBundle(const std::vector<std::string>& entries);
StatusOr<std::vector<std::string>> DecodeEntryBundle(std::string_view bundle);

}  // namespace toani::audit
