#include "crypto/sealed.h"

#include <gtest/gtest.h>

namespace toani::crypto {
namespace {

TEST(SealedBox, RoundTrip) {
  const BoxKeyPair kp = BoxKeyPairGenerate();
  ASSERT_EQ(kp.public_key.size(), kBoxPublicKeySize);
  ASSERT_EQ(kp.secret_key.size(), kBoxSecretKeySize);
  for (std::string_view msg : {std::string_view(""), std::string_view("hunter2-api-token")}) {
    auto sealed = SealToPublicKey(kp.public_key, AsBytes(msg));
    ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
    EXPECT_EQ(sealed->size(), msg.size() + kSealOverhead);
    auto opened = OpenSealed(kp, *sealed);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(opened->UnsafeView(), msg);
  }
}

TEST(SealedBox, WrongRecipientAndTamperingRefused) {
  const BoxKeyPair kp = BoxKeyPairGenerate();
  const BoxKeyPair other = BoxKeyPairGenerate();
  auto sealed = SealToPublicKey(kp.public_key, AsBytes("secret"));
  ASSERT_TRUE(sealed.ok());
  auto wrong = OpenSealed(other, *sealed);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), "decryption failed");
  for (size_t i = 0; i < sealed->size(); ++i) {
    Bytes bad = *sealed;
    bad[i] ^= 0x80;
    EXPECT_FALSE(OpenSealed(kp, bad).ok()) << "byte " << i;
  }
  EXPECT_FALSE(OpenSealed(kp, Bytes(kSealOverhead - 1, 0)).ok());
  EXPECT_FALSE(OpenSealed(kp, Bytes(sealed->begin(), sealed->end() - 1)).ok());
}

TEST(SealedBox, BadPublicKeysRefused) {
  EXPECT_FALSE(SealToPublicKey(Bytes(31, 1), AsBytes("x")).ok());
  EXPECT_FALSE(SealToPublicKey(Bytes(33, 1), AsBytes("x")).ok());
  // The all-zero point is of low order: the shared secret would be zero.
  EXPECT_FALSE(SealToPublicKey(Bytes(32, 0), AsBytes("x")).ok());
}

}  // namespace
}  // namespace toani::crypto
