#include "crypto/aead.h"

#include <gtest/gtest.h>

namespace toani::crypto {
namespace {

const Bytes kAd(AsBytes("tenant=t1|cred=c1|v=1").begin(), AsBytes("tenant=t1|cred=c1|v=1").end());

TEST(AesGcm, RoundTrip) {
  const SecretBytes key = SecretBytes::Random(32);
  for (size_t len : {0u, 1u, 15u, 16u, 17u, 1000u}) {
    const Bytes pt(len, 0x5a);
    auto sealed = AesGcmSeal(key, pt, kAd);
    ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
    EXPECT_EQ(sealed->size(), len + kAesGcmOverhead);
    auto opened = AesGcmOpen(key, *sealed, kAd);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(ToString(opened->UnsafeBytes()), ToString(pt));
  }
}

TEST(AesGcm, FreshNonceEveryTime) {
  const SecretBytes key = SecretBytes::Random(32);
  auto a = AesGcmSeal(key, AsBytes("same"), kAd);
  auto b = AesGcmSeal(key, AsBytes("same"), kAd);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(AesGcm, EveryBitFlipIsRefusedWithOneError) {
  const SecretBytes key = SecretBytes::Random(32);
  auto sealed = AesGcmSeal(key, AsBytes("credential plaintext"), kAd);
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    Bytes bad = *sealed;
    bad[i] ^= 0x01;
    auto opened = AesGcmOpen(key, bad, kAd);
    ASSERT_FALSE(opened.ok()) << "byte " << i;
    EXPECT_EQ(opened.status().message(), "decryption failed");
  }
}

TEST(AesGcm, WrongAdWrongKeyTruncationRefused) {
  const SecretBytes key = SecretBytes::Random(32);
  auto sealed = AesGcmSeal(key, AsBytes("secret"), kAd);
  ASSERT_TRUE(sealed.ok());
  auto wrong_ad = AesGcmOpen(key, *sealed, AsBytes("tenant=t2|cred=c1|v=1"));
  ASSERT_FALSE(wrong_ad.ok());
  EXPECT_EQ(wrong_ad.status().message(), "decryption failed");
  EXPECT_FALSE(AesGcmOpen(key, *sealed, {}).ok());
  EXPECT_FALSE(AesGcmOpen(SecretBytes::Random(32), *sealed, kAd).ok());
  const Bytes truncated(sealed->begin(), sealed->end() - 1);
  EXPECT_FALSE(AesGcmOpen(key, truncated, kAd).ok());
  EXPECT_FALSE(AesGcmOpen(key, Bytes(kAesGcmOverhead - 1, 0), kAd).ok());
  Bytes extended = *sealed;
  extended.push_back(0);
  EXPECT_FALSE(AesGcmOpen(key, extended, kAd).ok());
  auto short_key = AesGcmOpen(SecretBytes::Random(16), *sealed, kAd);
  ASSERT_FALSE(short_key.ok());
  EXPECT_EQ(short_key.status().message(), "decryption failed");
}

TEST(AesGcm, SealRejectsWrongKeySize) {
  EXPECT_FALSE(AesGcmSeal(SecretBytes::Random(16), AsBytes("x"), {}).ok());
  EXPECT_FALSE(AesGcmSeal(SecretBytes(), AsBytes("x"), {}).ok());
}

}  // namespace
}  // namespace toani::crypto
