// Pure parts of the audit plane: C2SP signed notes, checkpoints, tiles, proofs from tiles,
// entry bundles, tlog-proofs.
#include <gtest/gtest.h>

#include "audit/bundle.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/tiles.h"
#include "common/encoding.h"
#include "crypto/hash.h"

namespace toani::audit {
namespace {

// The example of c2sp.org/signed-note ("Verifier keys" → "Example").
constexpr const char* kSpecVkey =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const std::string kSpecNote =
    "This is an example message.\n\n"
    "\xE2\x80\x94 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
    "\n";

TEST(SignedNote, SpecExampleVerifies) {
  auto key = ParseVerifierKey(kSpecVkey);
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->key_id, 0x530d903au);
  EXPECT_EQ(FormatVerifierKey(*key), kSpecVkey);
  auto text = VerifyNote(kSpecNote, *key);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text, "This is an example message.\n");
}

TEST(SignedNote, EveryByteFlipIsRefused) {
  auto key = ParseVerifierKey(kSpecVkey);
  ASSERT_TRUE(key.ok());
  for (size_t i = 0; i < kSpecNote.size(); ++i) {
    std::string bad = kSpecNote;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(VerifyNote(bad, *key).ok()) << "flip at byte " << i;
  }
}

TEST(SignedNote, WrongKeyIdOrTypeRefused) {
  EXPECT_FALSE(
      ParseVerifierKey("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
          .ok());
  EXPECT_FALSE(
      ParseVerifierKey("example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
          .ok());
  EXPECT_FALSE(ParseVerifierKey("example.com/foo+530d903a").ok());
  // A note with only an unknown signature is refused (no trusted signature).
  auto key = ParseVerifierKey(kSpecVkey);
  std::string other = "This is an example message.\n\n\xE2\x80\x94 example.com/bar AAAAAAAA\n";
  EXPECT_EQ(VerifyNote(other, *key).status().code(), StatusCode::kPermissionDenied);
}

TEST(Checkpoint, TextRoundTripAndStrictParse) {
  Checkpoint c{"toani.local/audit/x", 20852163, {}};
  c.root[0] = 7;
  auto p = ParseCheckpointText(CheckpointText(c));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->origin, c.origin);
  EXPECT_EQ(p->size, c.size);
  EXPECT_EQ(p->root, c.root);
  EXPECT_FALSE(ParseCheckpointText("o\n012\nAAAA\n").ok());  // leading zero
  EXPECT_FALSE(ParseCheckpointText("o\n1\nAAAA\n").ok());    // root not 32 bytes
  EXPECT_FALSE(ParseCheckpointText("o\n1\n").ok());          // too few lines
  EXPECT_FALSE(
      ParseCheckpointText("o\n\n1\n" + CheckpointText(c).substr(0, 0)).ok());  // empty line
}

TEST(Tiles, PathsFollowTheSpec) {
  EXPECT_EQ(TilePath(0, 1234067, 256), "tile/0/x001/x234/067");
  EXPECT_EQ(TilePath(1, 5, 17), "tile/1/005.p/17");
  EXPECT_EQ(TilePath(-1, 0, 256), "tile/entries/000");
  auto r = ParseTilePath("0/x001/x234/067");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->n, 1234067u);
  EXPECT_EQ(r->width, 256u);
  auto e = ParseTilePath("entries/012.p/9");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->level, -1);
  EXPECT_EQ(e->width, 9u);
  for (const char* bad : {"0/1234067", "0/x1/067", "00/000", "0/000.p/0", "0/000.p/256",
                          "0/000.p/07", "64/000", "0/001/002", "x/000", "0/000/"}) {
    EXPECT_FALSE(ParseTilePath(bad).ok()) << bad;
  }
}

Hash Leaf(uint64_t i) {
  std::string s = "entry " + std::to_string(i);
  return LeafHash(AsBytes(s));
}

TEST(Tiles, SpecExampleOf70000Leaves) {
  TreeHashes t;
  for (uint64_t i = 0; i < 70000; ++i) t.Append(Leaf(i));
  // 273 full level-0 tiles, a partial of 112; one full level-1 tile, a partial of 17;
  // a partial level-2 tile of width 1.
  EXPECT_TRUE(t.Tile(0, 272, 256, 70000).ok());
  EXPECT_TRUE(t.Tile(0, 273, 112, 70000).ok());
  EXPECT_FALSE(t.Tile(0, 273, 113, 70000).ok());
  EXPECT_TRUE(t.Tile(1, 0, 256, 70000).ok());
  EXPECT_TRUE(t.Tile(1, 1, 17, 70000).ok());
  EXPECT_FALSE(t.Tile(1, 1, 18, 70000).ok());
  EXPECT_TRUE(t.Tile(2, 0, 1, 70000).ok());
  EXPECT_FALSE(t.Tile(2, 0, 2, 70000).ok());
  // A level-1 hash is the MTH of the level-0 tile below it.
  auto l0 = t.Tile(0, 3, 256, 70000);
  auto l1 = t.Tile(1, 0, 256, 70000);
  CompactRange r;
  for (int i = 0; i < 256; ++i) {
    Hash h;
    std::copy(l0->begin() + 32 * i, l0->begin() + 32 * (i + 1), h.begin());
    r.Append(h);
  }
  Hash root = r.Root();
  EXPECT_EQ(l1->substr(3 * 32, 32), std::string(root.begin(), root.end()));
}

TEST(Tiles, ProofsFromTilesVerify) {
  TreeHashes t;
  CompactRange r;
  std::vector<Hash> roots{EmptyRoot()};
  const uint64_t kMax = 700;
  for (uint64_t i = 0; i < kMax; ++i) {
    t.Append(Leaf(i));
    r.Append(Leaf(i));
    roots.push_back(r.Root());
  }
  for (uint64_t size = 1; size <= kMax; size += (size < 300 ? 1 : 37)) {
    ASSERT_EQ(*t.RootAt(size), roots[size]) << size;
    for (uint64_t i = 0; i < size; i += (size < 64 ? 1 : 13)) {
      auto p = t.InclusionProof(i, size);
      ASSERT_TRUE(p.ok());
      EXPECT_TRUE(VerifyInclusion(i, size, Leaf(i), *p, roots[size]).ok()) << i << "/" << size;
      EXPECT_FALSE(VerifyInclusion(i, size, Leaf(i + 1), *p, roots[size]).ok());
    }
    for (uint64_t m = 1; m <= size; m += (size < 64 ? 1 : 11)) {
      auto p = t.ConsistencyProof(m, size);
      ASSERT_TRUE(p.ok());
      EXPECT_TRUE(VerifyConsistency(m, size, *p, roots[m], roots[size]).ok()) << m << "->" << size;
      if (m > 1) {
        EXPECT_FALSE(VerifyConsistency(m, size, *p, roots[m - 1], roots[size]).ok());
      }
    }
  }
  EXPECT_FALSE(t.InclusionProof(kMax, kMax).ok());
  EXPECT_FALSE(t.ConsistencyProof(0, 5).ok());
  t.Truncate(300);
  EXPECT_EQ(t.size(), 300u);
  EXPECT_EQ(*t.RootAt(300), roots[300]);
}

TEST(EntryBundle, RoundTripAndTruncation) {
  std::vector<std::string> e{"a", std::string(300, 'b'), ""};
  auto b = EncodeEntryBundle(e);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->substr(0, 3), std::string("\x00\x01"
                                         "a",
                                         3));
  EXPECT_EQ(*DecodeEntryBundle(*b), e);
  EXPECT_FALSE(DecodeEntryBundle(b->substr(0, b->size() - 1 - 2)).ok());
  EXPECT_FALSE(EncodeEntryBundle({std::string(70000, 'x')}).ok());
}

TEST(TlogProof, FormatParse) {
  std::vector<Hash> proof(3);
  proof[1][0] = 9;
  std::string cp =
      "o\n3\n" + Base64Encode(std::vector<uint8_t>(32, 1)) + "\n\n\xE2\x80\x94 o AAAA\n";
  std::string t = FormatTlogProof(73894, proof, cp);
  EXPECT_EQ(t.substr(0, 35), "c2sp.org/tlog-proof@v1\nindex 73894\n");
  auto p = ParseTlogProof(t);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->index, 73894u);
  EXPECT_EQ(p->proof, proof);
  EXPECT_EQ(p->checkpoint, cp);
  EXPECT_FALSE(ParseTlogProof("c2sp.org/tlog-proof@v2\nindex 1\n\n" + cp).ok());
  EXPECT_FALSE(ParseTlogProof("c2sp.org/tlog-proof@v1\nindex 01\n\n" + cp).ok());
}

}  // namespace
}  // namespace toani::audit
