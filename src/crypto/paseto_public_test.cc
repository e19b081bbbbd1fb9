#include "crypto/paseto_public.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/encoding.h"

namespace toani::crypto {
namespace {

struct PublicVector {
  std::string name;
  bool expect_fail = false;
  std::string token, payload, footer, implicit_assertion, pk_hex, sk_hex;
};

std::vector<PublicVector> LoadPublicVectors() {
  std::vector<PublicVector> out;
  std::ifstream in(std::filesystem::path(TOANI_VECTORS_DIR) / "paseto" / "v4.json");
  if (!in) return out;
  const auto doc = nlohmann::json::parse(in);
  for (const auto& t : doc.at("tests")) {
    if (!t.contains("public-key")) continue;
    PublicVector v;
    v.name = t.at("name");
    v.expect_fail = t.at("expect-fail");
    v.token = t.at("token");
    if (t["payload"].is_string()) v.payload = t["payload"];
    v.footer = t.value("footer", "");
    v.implicit_assertion = t.value("implicit-assertion", "");
    v.pk_hex = t.at("public-key");
    v.sk_hex = t.value("secret-key", "");
    out.push_back(std::move(v));
  }
  return out;
}

class PasetoV4PublicVectors : public ::testing::TestWithParam<PublicVector> {};

TEST_P(PasetoV4PublicVectors, VerifiesExactlyAsSpecified) {
  const PublicVector& v = GetParam();
  auto pk = HexDecode(v.pk_hex);
  ASSERT_TRUE(pk.ok());
  auto msg = PasetoV4PublicVerify(*pk, v.token, v.implicit_assertion);
  if (v.expect_fail) {
    EXPECT_FALSE(msg.ok()) << v.name;
    return;
  }
  ASSERT_TRUE(msg.ok()) << v.name << ": " << msg.status().message();
  EXPECT_EQ(msg->payload, v.payload);
  EXPECT_EQ(msg->footer, v.footer);
  // Ed25519 is deterministic: signing the same inputs reproduces the token.
  auto sk = HexDecode(v.sk_hex);
  ASSERT_TRUE(sk.ok());
  auto token =
      PasetoV4PublicSign(SecretBytes::Copy(*sk), v.payload, v.footer, v.implicit_assertion);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, v.token);
}

INSTANTIATE_TEST_SUITE_P(Official, PasetoV4PublicVectors, ::testing::ValuesIn(LoadPublicVectors()),
                         [](const auto& pinfo) {
                           std::string n = pinfo.param.name;
                           for (char& c : n)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PasetoV4PublicVectors);

TEST(PasetoV4Public, VectorFileHasPublicVectors) {
  if (!std::filesystem::exists(std::filesystem::path(TOANI_VECTORS_DIR) / "paseto" / "v4.json")) {
    GTEST_SKIP() << "vectors absent";
  }
  size_t pass = 0;
  for (const auto& v : LoadPublicVectors()) pass += v.expect_fail ? 0 : 1;
  EXPECT_GE(pass, 3u);
}

TEST(PasetoV4Public, EverySingleByteChangeIsRefused) {
  uint8_t pk[32];
  SecretBytes sk(64);
  crypto_sign_keypair(pk, sk.UnsafeMutableData());
  auto token = PasetoV4PublicSign(sk, R"({"sub":"x"})", R"({"kid":"a"})", "ia");
  ASSERT_TRUE(token.ok());
  ASSERT_TRUE(PasetoV4PublicVerify(pk, *token, "ia").ok());
  EXPECT_FALSE(PasetoV4PublicVerify(pk, *token, "ib").ok());
  for (size_t i = 0; i < token->size(); ++i) {
    std::string t = *token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(PasetoV4PublicVerify(pk, t, "ia").ok()) << "byte " << i;
  }
}

}  // namespace
}  // namespace toani::crypto
