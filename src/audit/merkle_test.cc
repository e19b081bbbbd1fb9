#include "audit/merkle.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/encoding.h"
#include "crypto/hash.h"

namespace toani::audit {
namespace {

namespace fs = std::filesystem;

// ---- Vectors: transparency-dev/merkle testdata ---------------------------------------

fs::path MerkleDir() { return fs::path(TOANI_VECTORS_DIR) / "merkle"; }

std::vector<std::string> VectorFiles(const std::string& kind) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path dir = MerkleDir() / kind;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") {
      out.push_back(fs::relative(e.path(), MerkleDir()).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json Load(const std::string& rel) {
  std::ifstream in(MerkleDir() / rel);
  return nlohmann::json::parse(in);
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

// A hash field of a vector. Leaf hashes and proof nodes must be exactly 32 bytes: our
// typed API cannot even express anything else, so such a vector is refused before the
// verifier runs (the Go reference refuses a wrong-size leaf hash too).
std::optional<Hash> ExactHash(const std::string& b64) {
  auto b = Base64Decode(b64);
  if (!b.ok() || b->size() != 32) return std::nullopt;
  Hash h;
  std::copy(b->begin(), b->end(), h.begin());
  return h;
}

// Roots in the vectors are sometimes placeholders ("don't care 1", "") that are only
// ever compared for equality. A non-32-byte root is mapped to SHA-256 of a tagged copy
// of its bytes: equal placeholders stay equal, and none can equal a real 32-byte root.
Hash RootOrPlaceholder(const std::string& b64) {
  if (auto h = ExactHash(b64)) return *h;
  auto b = Base64Decode(b64);
  const std::string tagged = "placeholder-root:" + (b.ok() ? ToString(*b) : "invalid:" + b64);
  return crypto::Sha256(AsBytes(tagged));
}

std::optional<std::vector<Hash>> Proof(const nlohmann::json& j) {
  std::vector<Hash> out;
  if (j.is_null()) return out;
  for (const auto& e : j) {
    auto h = ExactHash(e.get<std::string>());
    if (!h) return std::nullopt;
    out.push_back(*h);
  }
  return out;
}

class InclusionVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(InclusionVectors, Verify) {
  const auto v = Load(GetParam());
  const bool want_err = v.at("wantErr").get<bool>();
  const auto leaf = ExactHash(v.at("leafHash").get<std::string>());
  const auto proof = Proof(v.at("proof"));
  if (!leaf || !proof) {
    EXPECT_TRUE(want_err) << "valid vector has a hash that is not 32 bytes: " << GetParam();
    return;
  }
  const Status st =
      VerifyInclusion(v.at("leafIdx").get<uint64_t>(), v.at("treeSize").get<uint64_t>(), *leaf,
                      *proof, RootOrPlaceholder(v.at("root")));
  if (want_err) {
    EXPECT_FALSE(st.ok()) << "accepted a corrupted proof: " << v.value("desc", "");
  } else {
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Vectors, InclusionVectors, ::testing::ValuesIn(VectorFiles("inclusion")),
                         TestName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(InclusionVectors);

class ConsistencyVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(ConsistencyVectors, Verify) {
  const auto v = Load(GetParam());
  const bool want_err = v.at("wantErr").get<bool>();
  const auto proof = Proof(v.at("proof"));
  if (!proof) {
    EXPECT_TRUE(want_err) << "valid vector has a proof node that is not 32 bytes";
    return;
  }
  const Status st =
      VerifyConsistency(v.at("size1").get<uint64_t>(), v.at("size2").get<uint64_t>(), *proof,
                        RootOrPlaceholder(v.at("root1")), RootOrPlaceholder(v.at("root2")));
  if (want_err) {
    EXPECT_FALSE(st.ok()) << "accepted a corrupted proof: " << v.value("desc", "");
  } else {
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Vectors, ConsistencyVectors,
                         ::testing::ValuesIn(VectorFiles("consistency")), TestName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ConsistencyVectors);

TEST(MerkleVectorDir, Present) {
  if (!fs::is_directory(MerkleDir())) {
    GTEST_SKIP() << "Merkle vectors not found at " << MerkleDir()
                 << " (TOANI_VECTORS_DIR); skipping";
  }
  EXPECT_GT(VectorFiles("inclusion").size(), 50u);
  EXPECT_GT(VectorFiles("consistency").size(), 50u);
}

// ---- Reference implementation straight from RFC 9162 §2.1.1, 2.1.3.1, 2.1.4.1 --------

uint64_t SplitPoint(uint64_t n) {  // largest power of two < n, for n > 1
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

Hash Mth(std::span<const Hash> leaves) {
  if (leaves.empty()) return crypto::Sha256({});
  if (leaves.size() == 1) return leaves[0];
  const uint64_t k = SplitPoint(leaves.size());
  return NodeHash(Mth(leaves.first(k)), Mth(leaves.subspan(k)));
}

std::vector<Hash> Path(uint64_t m, std::span<const Hash> d) {
  if (d.size() <= 1) return {};
  const uint64_t k = SplitPoint(d.size());
  std::vector<Hash> out;
  if (m < k) {
    out = Path(m, d.first(k));
    out.push_back(Mth(d.subspan(k)));
  } else {
    out = Path(m - k, d.subspan(k));
    out.push_back(Mth(d.first(k)));
  }
  return out;
}

std::vector<Hash> SubProof(uint64_t m, std::span<const Hash> d, bool b) {
  const uint64_t n = d.size();
  if (m == n) return b ? std::vector<Hash>{} : std::vector<Hash>{Mth(d)};
  const uint64_t k = SplitPoint(n);
  std::vector<Hash> out;
  if (m <= k) {
    out = SubProof(m, d.first(k), b);
    out.push_back(Mth(d.subspan(k)));
  } else {
    out = SubProof(m - k, d.subspan(k), false);
    out.push_back(Mth(d.first(k)));
  }
  return out;
}

std::vector<Hash> Leaves(uint64_t n) {
  std::vector<Hash> out;
  for (uint64_t i = 0; i < n; ++i) {
    const std::string entry = "entry-" + std::to_string(i);
    out.push_back(LeafHash(AsBytes(entry)));
  }
  return out;
}

TEST(Merkle, HashesAreDomainSeparated) {
  // RFC 6962 test data: the leaf hash of an empty entry and the empty root.
  EXPECT_EQ(HexEncode(LeafHash({})),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  EXPECT_EQ(HexEncode(EmptyRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const Hash a = LeafHash(AsBytes("a"));
  EXPECT_NE(NodeHash(a, a), LeafHash(Bytes(64)));
}

TEST(CompactRange, RootMatchesNaiveMthForSizes0To70) {
  const auto leaves = Leaves(70);
  CompactRange range;
  EXPECT_EQ(range.Root(), EmptyRoot());
  for (uint64_t n = 0; n <= 70; ++n) {
    ASSERT_EQ(range.size(), n);
    ASSERT_EQ(range.Root(), Mth(std::span<const Hash>(leaves).first(n))) << "size " << n;
    ASSERT_EQ(range.state().size(), static_cast<size_t>(std::popcount(n)));
    if (n < 70) range.Append(leaves[n]);
  }
}

TEST(CompactRange, StateRestores) {
  const auto leaves = Leaves(45);
  CompactRange a;
  for (size_t i = 0; i < 37; ++i) a.Append(leaves[i]);
  auto b = CompactRange::FromState(a.size(), a.state());
  ASSERT_TRUE(b.ok());
  for (size_t i = 37; i < 45; ++i) {
    a.Append(leaves[i]);
    b->Append(leaves[i]);
  }
  EXPECT_EQ(b->Root(), a.Root());
  EXPECT_EQ(b->Root(), Mth(leaves));
  EXPECT_FALSE(CompactRange::FromState(37, {}).ok());
  EXPECT_FALSE(CompactRange::FromState(0, {leaves[0]}).ok());
  EXPECT_TRUE(CompactRange::FromState(0, {}).ok());
}

TEST(Merkle, ReferenceProofsVerifyAndTamperedOnesDoNot) {
  const auto leaves = Leaves(33);
  const std::span<const Hash> all(leaves);
  for (uint64_t n = 1; n <= 33; ++n) {
    const Hash root = Mth(all.first(n));
    for (uint64_t i = 0; i < n; ++i) {
      auto proof = Path(i, all.first(n));
      ASSERT_TRUE(VerifyInclusion(i, n, leaves[i], proof, root).ok()) << i << "/" << n;
      // (The same proof can be valid for size n+1 — only the root binds the size.)
      EXPECT_FALSE(VerifyInclusion(i, 2 * n + 1, leaves[i], proof, root).ok());
      EXPECT_FALSE(VerifyInclusion(i, n, leaves[(i + 1) % 33], proof, root).ok());
      if (!proof.empty()) {
        proof.back()[0] ^= 1;
        EXPECT_FALSE(VerifyInclusion(i, n, leaves[i], proof, root).ok());
      }
    }
    for (uint64_t m = 1; m <= n; ++m) {
      const Hash root1 = Mth(all.first(m));
      auto proof = SubProof(m, all.first(n), true);
      ASSERT_TRUE(VerifyConsistency(m, n, proof, root1, root).ok()) << m << "->" << n;
      EXPECT_FALSE(VerifyConsistency(m, n, proof, root, root1).ok() && m != n);
      if (!proof.empty()) {
        proof.front()[31] ^= 0x80;
        EXPECT_FALSE(VerifyConsistency(m, n, proof, root1, root).ok());
      }
    }
  }
}

TEST(Merkle, ProofArgumentEdgeCases) {
  const Hash leaf = LeafHash(AsBytes("x"));
  EXPECT_TRUE(VerifyInclusion(0, 1, leaf, {}, leaf).ok());
  EXPECT_FALSE(VerifyInclusion(1, 1, leaf, {}, leaf).ok());
  EXPECT_FALSE(VerifyInclusion(0, 0, leaf, {}, leaf).ok());
  EXPECT_FALSE(VerifyInclusion(0, 1, leaf, {leaf}, leaf).ok());
  EXPECT_FALSE(VerifyConsistency(0, 0, {}, EmptyRoot(), EmptyRoot()).ok());
  EXPECT_FALSE(VerifyConsistency(0, 5, {}, EmptyRoot(), leaf).ok());
  EXPECT_FALSE(VerifyConsistency(2, 1, {}, leaf, leaf).ok());
  EXPECT_TRUE(VerifyConsistency(3, 3, {}, leaf, leaf).ok());
  EXPECT_FALSE(VerifyConsistency(3, 3, {leaf}, leaf, leaf).ok());
  EXPECT_FALSE(VerifyInclusion(UINT64_MAX - 1, UINT64_MAX, leaf, {}, leaf).ok());
}

}  // namespace
}  // namespace toani::audit
