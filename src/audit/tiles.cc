#include "audit/tiles.h"

#include <bit>
#include <charconv>

namespace toani::audit {
namespace {

uint64_t Pow256(int l) { return uint64_t{1} << (8 * l); }
constexpr int kStride = 4;  // heights kept: every 4th
constexpr uint64_t kGroup = uint64_t{1} << kStride;

StatusOr<uint64_t> ParseNum(std::string_view s, bool allow_leading_zero) {
  if (s.empty() || (!allow_leading_zero && s.size() > 1 && s[0] == '0')) {
    return Status::InvalidArgument("tile path: bad number");
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    return Status::InvalidArgument("tile path: bad number");
  return v;
}

// Largest power of two strictly less than n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

}  // namespace

std::string TilePath(int level, uint64_t n, uint64_t width) {
  std::string nstr;
  std::string digits = std::to_string(n);
  while (digits.size() % 3 != 0) digits.insert(digits.begin(), '0');
  for (size_t i = 0; i < digits.size(); i += 3) {
    if (i + 3 < digits.size())
      nstr += "x" + digits.substr(i, 3) + "/";
    else
      nstr += digits.substr(i, 3);
  }
  std::string p =
      "tile/" + (level < 0 ? std::string("entries") : std::to_string(level)) + "/" + nstr;
  if (width < kTileWidth) p += ".p/" + std::to_string(width);
  return p;
}

StatusOr<TileRef> ParseTilePath(std::string_view path) {
  const std::string original(path);
  TileRef r;
  size_t slash = path.find('/');
  if (slash == std::string_view::npos) return Status::InvalidArgument("tile path: no index");
  std::string_view lv = path.substr(0, slash);
  path.remove_prefix(slash + 1);
  if (lv == "entries") {
    r.level = -1;
  } else {
    TOANI_ASSIGN_OR_RETURN(uint64_t l, ParseNum(lv, false));
    if (l > 63) return Status::InvalidArgument("tile path: level out of range");
    r.level = static_cast<int>(l);
  }
  size_t dotp = path.find(".p/");
  std::string_view idx = path.substr(0, dotp);
  if (dotp != std::string_view::npos) {
    TOANI_ASSIGN_OR_RETURN(r.width, ParseNum(path.substr(dotp + 3), false));
    if (r.width < 1 || r.width > 255) return Status::InvalidArgument("tile path: bad width");
  }
  uint64_t n = 0;
  while (true) {
    size_t s = idx.find('/');
    std::string_view el = idx.substr(0, s);
    bool last = s == std::string_view::npos;
    if (!last) {
      if (el.size() != 4 || el[0] != 'x') return Status::InvalidArgument("tile path: bad element");
      el.remove_prefix(1);
    }
    if (el.size() != 3) return Status::InvalidArgument("tile path: bad element");
    TOANI_ASSIGN_OR_RETURN(uint64_t part, ParseNum(el, true));
    if (n > (UINT64_MAX - part) / 1000)
      return Status::InvalidArgument("tile path: index too large");
    n = n * 1000 + part;
    if (last) break;
    idx.remove_prefix(s + 1);
  }
  r.n = n;
  if (TilePath(r.level, r.n, r.width) != "tile/" + original) {
    return Status::InvalidArgument("tile path: not canonical");
  }
  return r;
}

void TreeHashes::Append(const Hash& leaf) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf);
  // Each completed group of 16 at height 4j adds one hash at height 4(j+1).
  for (size_t j = 0; levels_[j].size() % kGroup == 0; ++j) {
    if (levels_.size() == j + 1) levels_.emplace_back();
    const uint64_t k = levels_[j].size() / kGroup - 1;
    levels_[j + 1].push_back(Node(static_cast<int>(kStride * (j + 1)), k));
  }
}

void TreeHashes::Truncate(uint64_t s) {
  for (size_t j = 0; j < levels_.size(); ++j) levels_[j].resize(s >> (kStride * j));
}

Hash TreeHashes::Node(int height, uint64_t k) const {
  const size_t j = static_cast<size_t>(height / kStride);
  if (height % kStride == 0 && j < levels_.size() && k < levels_[j].size()) return levels_[j][k];
  TOANI_CHECK(height > 0);
  return NodeHash(Node(height - 1, 2 * k), Node(height - 1, 2 * k + 1));
}

Hash TreeHashes::Range(uint64_t begin, uint64_t end) const {
  const uint64_t n = end - begin;
  if (n == 0) return EmptyRoot();
  if (std::has_single_bit(n) && begin % n == 0) {
    return Node(std::countr_zero(n), begin / n);
  }
  const uint64_t k = SplitPoint(n);
  return NodeHash(Range(begin, begin + k), Range(begin + k, end));
}

StatusOr<Hash> TreeHashes::RootAt(uint64_t s) const {
  if (s > size()) return Status::InvalidArgument("tree size beyond the log");
  return Range(0, s);
}

void TreeHashes::Path(uint64_t m, uint64_t begin, uint64_t end, std::vector<Hash>* out) const {
  const uint64_t n = end - begin;
  if (n <= 1) return;
  const uint64_t k = SplitPoint(n);
  if (m < k) {
    Path(m, begin, begin + k, out);
    out->push_back(Range(begin + k, end));
  } else {
    Path(m - k, begin + k, end, out);
    out->push_back(Range(begin, begin + k));
  }
}

StatusOr<std::vector<Hash>> TreeHashes::InclusionProof(uint64_t index, uint64_t s) const {
  if (s > size() || index >= s)
    return Status::InvalidArgument("inclusion proof: index out of range");
  std::vector<Hash> out;
  Path(index, 0, s, &out);
  return out;
}

void TreeHashes::SubProof(uint64_t m, uint64_t begin, uint64_t end, bool b,
                          std::vector<Hash>* out) const {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!b) out->push_back(Range(begin, end));
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    SubProof(m, begin, begin + k, b, out);
    out->push_back(Range(begin + k, end));
  } else {
    SubProof(m - k, begin + k, end, false, out);
    out->push_back(Range(begin, begin + k));
  }
}

StatusOr<std::vector<Hash>> TreeHashes::ConsistencyProof(uint64_t size1, uint64_t size2) const {
  if (size1 == 0 || size1 > size2 || size2 > size()) {
    return Status::InvalidArgument("consistency proof: sizes out of range");
  }
  std::vector<Hash> out;
  if (size1 < size2) SubProof(size1, 0, size2, true, &out);
  return out;
}

StatusOr<std::string> TreeHashes::Tile(int level, uint64_t n, uint64_t width,
                                       uint64_t tree_size) const {
  if (level < 0 || level > 7 || tree_size > size() || width == 0 || width > kTileWidth) {
    return Status::NotFound("no such tile");
  }
  const uint64_t count = tree_size / Pow256(level);  // hashes that exist at this level
  if (n > count / kTileWidth) return Status::NotFound("no such tile");
  const uint64_t avail = std::min<uint64_t>(kTileWidth, count - n * kTileWidth);
  // A narrower width is the partial tile of an earlier tree size: a prefix, served too.
  if (width > avail) return Status::NotFound("no such tile");
  std::string out;
  out.reserve(width * 32);
  for (uint64_t i = 0; i < width; ++i) {
    Hash h = Node(8 * level, n * kTileWidth + i);
    out.append(reinterpret_cast<const char*>(h.data()), h.size());
  }
  return out;
}

std::vector<std::pair<int, uint64_t>> TreeHashes::TilesCompletedBy(uint64_t index) const {
  std::vector<std::pair<int, uint64_t>> out;
  uint64_t s = index + 1;
  for (int l = 0; l < 8 && s % Pow256(l + 1) == 0; ++l) {
    out.emplace_back(l, s / Pow256(l + 1) - 1);
  }
  return out;
}

StatusOr<std::string> EncodeEntryBundle(const std::vector<std::string>& entries) {
  std::string out;
  for (const auto& e : entries) {
    if (e.size() > 0xFFFF) return Status::InvalidArgument("entry bundle: entry over 65535 bytes");
    out.push_back(static_cast<char>(e.size() >> 8));
    out.push_back(static_cast<char>(e.size() & 0xFF));
    out += e;
  }
  return out;
}

StatusOr<std::vector<std::string>> DecodeEntryBundle(std::string_view b) {
  std::vector<std::string> out;
  while (!b.empty()) {
    if (b.size() < 2) return Status::InvalidArgument("entry bundle: truncated length");
    size_t n = (size_t{static_cast<uint8_t>(b[0])} << 8) | static_cast<uint8_t>(b[1]);
    b.remove_prefix(2);
    if (b.size() < n) return Status::InvalidArgument("entry bundle: truncated entry");
    out.emplace_back(b.substr(0, n));
    b.remove_prefix(n);
  }
  return out;
}

}  // namespace toani::audit
