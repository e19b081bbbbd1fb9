#include "policy/signing.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"

namespace toani::policy {
namespace {

using nlohmann::json;

json Doc() { return {{"policy_id", "p"}, {"version", 2}, {"actions", {{"a", {{"x", 1}}}}}}; }

TEST(PolicySigning, SignVerifyRoundTripAndKeyIds) {
  ASSERT_GE(sodium_init(), 0);
  PolicyKeyPair k = GeneratePolicyKey();
  EXPECT_EQ(k.secret.UnsafeView().substr(0, 10), "k4.secret.");
  auto pk = ParsePublicKey(k.public_key);
  ASSERT_TRUE(pk.ok());
  EXPECT_EQ(PublicKeyId(*pk), k.key_id);
  EXPECT_EQ(k.key_id.rfind("k4.pid.", 0), 0u);
  EXPECT_EQ(k.key_id.size(), 7u + 44u);  // base64url of 33 bytes
  auto env = SignPolicy(Doc(), k.secret);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto sp = ParseSignedPolicy(*env);
  ASSERT_TRUE(sp.ok()) << sp.status().ToString();
  EXPECT_EQ(sp->canonical, CanonicalizeJson(Doc()));
  ASSERT_EQ(sp->signatures.size(), 1u);
  EXPECT_EQ(sp->signatures[0].key_id, k.key_id);
  EXPECT_TRUE(VerifyPolicySignature(sp->canonical, sp->signatures[0], *pk).ok());
  // Member order and whitespace do not matter (RFC 8785); any value change does.
  json reordered = json::parse(R"({"version":2,"actions":{"a":{"x":1.0}},"policy_id":"p"})");
  EXPECT_TRUE(VerifyPolicySignature(CanonicalizeJson(reordered), sp->signatures[0], *pk).ok());
  json changed = Doc();
  changed["version"] = 3;
  EXPECT_EQ(VerifyPolicySignature(CanonicalizeJson(changed), sp->signatures[0], *pk).code(),
            StatusCode::kUnauthenticated);
  // Another key's signature does not verify under this key.
  PolicyKeyPair other = GeneratePolicyKey();
  auto env2 = SignPolicy(Doc(), other.secret);
  auto sp2 = ParseSignedPolicy(*env2);
  EXPECT_FALSE(VerifyPolicySignature(sp2->canonical, sp2->signatures[0], *pk).ok());
  // Co-signing adds a second signature; re-signing with the same key replaces it.
  auto both = SignPolicy(*env, other.secret);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ((*both)["signatures"].size(), 2u);
  auto again = SignPolicy(*both, other.secret);
  EXPECT_EQ((*again)["signatures"].size(), 2u);
}

TEST(PolicySigning, RefusesMalformedInput) {
  EXPECT_FALSE(ParseSignedPolicy(Doc()).ok());  // unsigned: a bare document
  EXPECT_FALSE(ParseSignedPolicy({{"policy", Doc()}, {"signatures", json::array()}}).ok());
  EXPECT_FALSE(ParseSignedPolicy({{"policy", Doc()}, {"signatures", {{{"keyid", "k"}}}}}).ok());
  EXPECT_FALSE(
      ParseSignedPolicy({{"policy", Doc()}, {"signatures", json::array()}, {"extra", 1}}).ok());
  EXPECT_FALSE(ParsePublicKey("k4.public.AAAA").ok());
  EXPECT_FALSE(ParsePublicKey("k4.local." + std::string(43, 'A')).ok());
  EXPECT_FALSE(SignPolicy(Doc(), SecretBytes::Copy(std::string_view("k4.secret.AAAA"))).ok());
  // A secret whose embedded public half does not match its seed is refused.
  PolicyKeyPair k = GeneratePolicyKey();
  std::string text(k.secret.UnsafeView());
  auto raw = Base64UrlDecodeStrict(text.substr(10));
  ASSERT_TRUE(raw.ok());
  (*raw)[40] ^= 1;
  EXPECT_FALSE(SignPolicy(Doc(), SecretBytes::Copy("k4.secret." + Base64UrlEncode(*raw))).ok());
  // A signature that is not 64 bytes of base64url.
  auto pk = ParsePublicKey(k.public_key);
  EXPECT_FALSE(VerifyPolicySignature("{}", {k.key_id, "not base64!"}, *pk).ok());
}

}  // namespace
}  // namespace toani::policy
