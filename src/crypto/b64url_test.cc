#include "crypto/b64url.h"

#include <gtest/gtest.h>
#include <sodium.h>

namespace toani::crypto {
namespace {

TEST(PublicBase64Url, MatchesLibsodiumOnEveryLengthAndRoundTrips) {
  for (size_t n = 0; n < 200; ++n) {
    Bytes b(n);
    randombytes_buf(b.data(), b.size());
    const std::string enc = PublicBase64UrlEncode(b);
    EXPECT_EQ(enc, Base64UrlEncode(b)) << n;
    auto dec = PublicBase64UrlDecodeStrict(enc);
    ASSERT_TRUE(dec.has_value()) << n;
    EXPECT_EQ(*dec, b);
  }
}

TEST(PublicBase64Url, RefusesEveryNonCanonicalSpelling) {
  EXPECT_FALSE(PublicBase64UrlDecodeStrict("AA==").has_value());  // padding
  EXPECT_FALSE(PublicBase64UrlDecodeStrict("A").has_value());     // 1 mod 4
  EXPECT_FALSE(PublicBase64UrlDecodeStrict("AB").has_value());    // trailing bits set
  EXPECT_TRUE(PublicBase64UrlDecodeStrict("AA").has_value());
  EXPECT_FALSE(PublicBase64UrlDecodeStrict("AAB").has_value());
  EXPECT_FALSE(PublicBase64UrlDecodeStrict("A+/A").has_value());  // base64, not base64url
  EXPECT_FALSE(PublicBase64UrlDecodeStrict(std::string("AA\0A", 4)).has_value());
  EXPECT_TRUE(PublicBase64UrlDecodeStrict("").has_value());
}

}  // namespace
}  // namespace toani::crypto
