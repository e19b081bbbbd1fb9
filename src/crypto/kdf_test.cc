#include "crypto/kdf.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/hash.h"

namespace toani::crypto {
namespace {

Bytes Hex(std::string_view h) {
  auto b = HexDecode(h);
  TOANI_CHECK(b.ok());
  return *b;
}

TEST(Hash, Sha256KnownAnswers) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))), Sha256Hex("abc"));
}

TEST(Hkdf, Rfc5869TestCase1) {
  const SecretBytes ikm = SecretBytes::Copy(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"));
  const Bytes salt = Hex("000102030405060708090a0b0c");
  const Bytes info = Hex("f0f1f2f3f4f5f6f7f8f9");
  const SecretBytes okm = HkdfSha256(ikm, salt, info, 42);
  EXPECT_EQ(HexEncode(okm.UnsafeBytes()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hkdf, Rfc5869TestCase3EmptySaltAndInfo) {
  const SecretBytes ikm = SecretBytes::Copy(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"));
  const SecretBytes okm = HkdfSha256(ikm, {}, {}, 42);
  EXPECT_EQ(HexEncode(okm.UnsafeBytes()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(Hkdf, DifferentInfoGivesDifferentKeys) {
  const SecretBytes ikm = SecretBytes::Random(32);
  const SecretBytes a = HkdfSha256(ikm, AsBytes("salt"), AsBytes("purpose-a|1"), 32);
  const SecretBytes b = HkdfSha256(ikm, AsBytes("salt"), AsBytes("purpose-b|1"), 32);
  const SecretBytes a2 = HkdfSha256(ikm, AsBytes("salt"), AsBytes("purpose-a|1"), 32);
  EXPECT_FALSE(a.ConstantTimeEquals(b));
  EXPECT_TRUE(a.ConstantTimeEquals(a2));
}

TEST(Hkdf, OutOfRangeLengthIsABug) {
  const SecretBytes ikm = SecretBytes::Random(32);
  EXPECT_DEATH(HkdfSha256(ikm, {}, {}, 255 * 32 + 1), "TOANI_CHECK");
  EXPECT_DEATH(HkdfSha256(ikm, {}, {}, 0), "TOANI_CHECK");
}

TEST(Hmac, Rfc4231TestCases) {
  const SecretBytes key1 = SecretBytes::Copy(Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"));
  EXPECT_EQ(HexEncode(HmacSha256(key1, AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  const SecretBytes key2 = SecretBytes::Copy(std::string_view("Jefe"));
  EXPECT_EQ(HexEncode(HmacSha256(key2, AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: key longer than the block size is hashed first.
  const SecretBytes key6 = SecretBytes::Copy(Bytes(131, 0xaa));
  EXPECT_EQ(HexEncode(HmacSha256(
                key6, AsBytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

}  // namespace
}  // namespace toani::crypto
