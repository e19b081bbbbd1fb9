#include "crypto/shamir.h"

#include <gtest/gtest.h>

namespace toani::crypto {
namespace {

std::vector<ShamirShare> Pick(const std::vector<ShamirShare>& all,
                              std::initializer_list<size_t> idx) {
  std::vector<ShamirShare> out;
  for (size_t i : idx) out.push_back({all[i].x, SecretBytes::Copy(all[i].y.UnsafeBytes())});
  return out;
}

TEST(Shamir, AnyThresholdSubsetReconstructs) {
  SecretBytes secret = SecretBytes::Random(32);
  auto shares = ShamirSplit(secret, 5, 3);
  ASSERT_TRUE(shares.ok());
  ASSERT_EQ(shares->size(), 5u);
  for (size_t a = 0; a < 5; ++a)
    for (size_t b = a + 1; b < 5; ++b)
      for (size_t c = b + 1; c < 5; ++c) {
        auto got = ShamirCombine(Pick(*shares, {a, b, c}));
        ASSERT_TRUE(got.ok());
        EXPECT_TRUE(got->ConstantTimeEquals(secret)) << a << b << c;
      }
  // All five also work (the polynomial has degree 2).
  auto all = ShamirCombine(Pick(*shares, {0, 1, 2, 3, 4}));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->ConstantTimeEquals(secret));
}

TEST(Shamir, TooFewOrWrongSharesGiveAWrongSecret) {
  SecretBytes secret = SecretBytes::Random(32);
  auto shares = ShamirSplit(secret, 5, 3);
  ASSERT_TRUE(shares.ok());
  auto two = ShamirCombine(Pick(*shares, {0, 1}));
  ASSERT_TRUE(two.ok());
  EXPECT_FALSE(two->ConstantTimeEquals(secret));
  auto bad = Pick(*shares, {0, 1, 2});
  bad[2].y.UnsafeMutableData()[0] ^= 1;
  auto got = ShamirCombine(bad);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->ConstantTimeEquals(secret));
}

TEST(Shamir, RefusesRepeatedAndInvalidShares) {
  SecretBytes secret = SecretBytes::Random(16);
  auto shares = ShamirSplit(secret, 3, 2);
  ASSERT_TRUE(shares.ok());
  EXPECT_FALSE(ShamirCombine(Pick(*shares, {0, 0})).ok());
  auto zero = Pick(*shares, {0, 1});
  zero[0].x = 0;
  EXPECT_FALSE(ShamirCombine(zero).ok());
  EXPECT_FALSE(ShamirCombine({}).ok());
  EXPECT_FALSE(ShamirSplit(secret, 2, 3).ok());
  EXPECT_FALSE(ShamirSplit(secret, 256, 2).ok());
  EXPECT_FALSE(ShamirSplit(SecretBytes(), 3, 2).ok());
}

TEST(Shamir, ThresholdOneSharesAreTheSecret) {
  SecretBytes secret = SecretBytes::Random(32);
  auto shares = ShamirSplit(secret, 2, 1);
  ASSERT_TRUE(shares.ok());
  EXPECT_TRUE((*shares)[1].y.ConstantTimeEquals(secret));
}

}  // namespace
}  // namespace toani::crypto
