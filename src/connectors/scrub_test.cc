#include "connectors/scrub.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/log.h"

namespace toani {
namespace {

TEST(ScrubSecretTest, ReplacesExactValue) {
  const SecretBytes s = SecretBytes::Copy(std::string_view("sk_live_abc123XYZ"));
  EXPECT_EQ(ScrubSecret("token=sk_live_abc123XYZ;", s), "token=[REDACTED];");
  EXPECT_EQ(ScrubSecret("a sk_live_abc123XYZ b sk_live_abc123XYZ", s), "a [REDACTED] b [REDACTED]");
}

TEST(ScrubSecretTest, ReplacesEncodings) {
  const std::string raw = "p@ss w/rd+?&=\"x\"~";
  const SecretBytes s = SecretBytes::Copy(std::string_view(raw));
  const std::string b64 = Base64Encode(AsBytes(raw));
  const std::string b64url = Base64UrlEncode(AsBytes(raw));
  const std::string hex = HexEncode(AsBytes(raw));
  std::string upper_hex = hex;
  for (char& c : upper_hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const struct {
    std::string form;
  } cases[] = {{raw},
               {b64},
               {b64url},
               {hex},
               {upper_hex},
               {"p%40ss%20w%2Frd%2B%3F%26%3D%22x%22~"},
               {"p%40ss%20w%2frd%2b%3f%26%3d%22x%22~"},
               {"p%40ss+w%2Frd%2B%3F%26%3D%22x%22~"},
               {"p@ss w/rd+?&=\\\"x\\\"~"}};
  for (const auto& c : cases) {
    const std::string out = ScrubSecret("<" + c.form + ">", s);
    EXPECT_EQ(out, "<[REDACTED]>") << c.form;
  }
}

TEST(ScrubSecretTest, ReplacesSecretInsideLongerBase64AtEveryAlignment) {
  const std::string secret = "correct-horse-battery-staple";
  const SecretBytes s = SecretBytes::Copy(std::string_view(secret));
  for (const std::string user : {"u", "us", "use", "user"}) {
    const std::string basic = Base64Encode(AsBytes(user + ":" + secret));
    const std::string out = ScrubSecret("Authorization: Basic " + basic, s);
    EXPECT_NE(out.find("[REDACTED]"), std::string::npos) << user;
    // At most 3 characters next to the marker may still depend on the secret.
    EXPECT_LE(out.size(), std::string("Authorization: Basic ").size() + 12 + 10) << out;
  }
}

TEST(ScrubSecretTest, OverlappingAndAdjacentMatchesCollapse) {
  const SecretBytes s = SecretBytes::Copy(std::string_view("abab"));
  EXPECT_EQ(ScrubSecret("xabababy", s), "x[REDACTED]y");
  EXPECT_EQ(ScrubSecret("ababab", s), "[REDACTED]");
}

TEST(ScrubSecretTest, LeavesOtherTextAlone) {
  const SecretBytes s = SecretBytes::Copy(std::string_view("hunter2hunter2"));
  EXPECT_EQ(ScrubSecret("nothing to see here", s), "nothing to see here");
  EXPECT_EQ(ScrubSecret("hunter2", s), "hunter2");
  EXPECT_EQ(ScrubSecret("", s), "");
}

TEST(ScrubSecretTest, EmptySecretIsIdentity) {
  EXPECT_EQ(ScrubSecret("abc", SecretBytes()), "abc");
}

TEST(ScrubSecretTest, BinarySecret) {
  const uint8_t bytes[] = {0x00, 0xff, 0x10, 0x80, 0x7f, 0x0a, 0x22, 0x5c};
  const SecretBytes s = SecretBytes::Copy(std::span<const uint8_t>(bytes));
  EXPECT_EQ(ScrubSecret("x" + HexEncode(bytes) + "y", s), "x[REDACTED]y");
  EXPECT_EQ(ScrubSecret("x" + Base64Encode(bytes) + "y", s), "x[REDACTED]y");
  EXPECT_EQ(ScrubSecret("x\\u0000\\u00ff", s), "x\\u0000\\u00ff");
  EXPECT_EQ(ScrubSecret("x%00%FF%10%80%7F%0A%22%5Cy", s), "x[REDACTED]y");
}

TEST(ScrubSecretTest, DecodesMixedEscapesOfAnyLibrary) {
  const std::string raw = "p@ss w/rd+?&=\"x\"~\xC3\xBCn";  // "...~ün"
  const SecretBytes s = SecretBytes::Copy(std::string_view(raw));
  for (const std::string& form : {
           // encodeURIComponent keeps ~; URLSearchParams encodes ~ and uses '+'; Python
           // quote keeps '/'; mixed case hex; one JSON escaping with \u for non-ASCII;
           // HTML entities (named, decimal, hex); JSON escaping twice.
           std::string("p%40ss%20w%2Frd%2B%3F%26%3D%22x%22~%C3%BCn"),
           std::string("p%40ss+w%2Frd%2B%3F%26%3D%22x%22%7E%C3%BCn"),
           std::string("p%40ss%20w/rd%2B%3F%26%3D%22x%22~%c3%bcn"),
           std::string("p@ss w\\/rd+?&=\\\"x\\\"~\\u00fcn"),
           std::string("p@ss w/rd+?&amp;=&quot;x&#34;~&#xfc;n"),
           std::string("p@ss w/rd+?&=\\\\\\\"x\\\\\\\"~\xC3\xBCn"),
       }) {
    EXPECT_EQ(ScrubSecret("<" + form + ">", s), "<[REDACTED]>") << form;
  }
  // Near misses stay.
  EXPECT_EQ(ScrubSecret("p%40ss%20w%2Frd", s), "p%40ss%20w%2Frd");
}

TEST(CredentialShapesTest, JwtsKeyPrefixesAndAuthSchemes) {
  EXPECT_EQ(
      ScrubCredentialShapes("t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlX2hlcmU x"),
      "t=[REDACTED] x");
  EXPECT_EQ(ScrubCredentialShapes("Authorization: Bearer abcdefgh12345678"),
            "Authorization: Bearer [REDACTED]");
  EXPECT_EQ(ScrubCredentialShapes("basic   dXNlcjpwYXNzd29yZA=="), "basic   [REDACTED]");
  for (const char* key :
       {"sk_live_4eC39HqLyjWDarjtT1zdp7dc", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "AKIAIOSFODNN7EXAMPLE", "xoxb-123456789012-abcdefghij", "glpat-abcdefghij0123456789",
        "sk-ant-api03-abcdefghijklmnopqrstuv", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234"}) {
    EXPECT_EQ(ScrubCredentialShapes(std::string("k=") + key + ";"), "k=[REDACTED];") << key;
  }
  // Ordinary text and hashes stay.
  for (const char* ok : {"the bearer of good news", "sha256:9f86d081884c7d659a2feaa0c55ad015",
                         "eyJ alone", "skate-park", "a.b.c", "Token expired"}) {
    EXPECT_EQ(ScrubCredentialShapes(ok), ok);
  }
  // Linear: a 4 MiB run does not blow the stack (std::regex did).
  std::string big = "Bearer " + std::string(4 << 20, 'A');
  EXPECT_EQ(ScrubCredentialShapes(big), "Bearer [REDACTED]");
}

TEST(MakeValidUtf8Test, KeepsValidAndReplacesInvalid) {
  EXPECT_EQ(MakeValidUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(MakeValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(MakeValidUtf8("a\xFFz"), "a" + fffd + "z");
  EXPECT_EQ(MakeValidUtf8("\xC0\xAF"), fffd + fffd);                        // overlong '/'
  EXPECT_EQ(MakeValidUtf8("\xED\xA0\x80"), fffd + fffd + fffd);             // surrogate
  EXPECT_EQ(MakeValidUtf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(MakeValidUtf8("\xE2\x82"), fffd + fffd);                        // truncated
  EXPECT_EQ(MakeValidUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

}  // namespace
}  // namespace toani
