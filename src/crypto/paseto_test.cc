#include "crypto/paseto.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "common/encoding.h"

namespace toani::crypto {
namespace {

namespace fs = std::filesystem;

// ---- Official vectors: paseto-standard/test-vectors v4.json -------------------------

struct Vector {
  std::string name;
  bool expect_fail = false;
  std::string token, payload, footer, implicit_assertion;
  std::string key_hex, nonce_hex;           // v4.local vectors
  std::vector<std::string> other_keys_hex;  // v4.public secret key, for misuse vectors
};

fs::path VectorFile() { return fs::path(TOANI_VECTORS_DIR) / "paseto" / "v4.json"; }

std::vector<Vector> LoadVectors() {
  std::vector<Vector> out;
  std::ifstream in(VectorFile());
  if (!in) return out;
  const auto doc = nlohmann::json::parse(in);
  for (const auto& t : doc.at("tests")) {
    Vector v;
    v.name = t.at("name").get<std::string>();
    v.expect_fail = t.at("expect-fail").get<bool>();
    v.token = t.at("token").get<std::string>();
    if (t.contains("payload") && t["payload"].is_string()) v.payload = t["payload"];
    v.footer = t.value("footer", "");
    v.implicit_assertion = t.value("implicit-assertion", "");
    v.key_hex = t.value("key", "");
    v.nonce_hex = t.value("nonce", "");
    // 4-F-1 is a v4.local token made with an Ed25519 *public* key as the symmetric key:
    // it checks that key types are not interchangeable. Raw bytes cannot say what they
    // are, so that is enforced by types here (local keys are SecretBytes derived in keyd,
    // public keys are Bytes). We still try the vector's secret key, which must be refused.
    if (t.contains("secret-key")) v.other_keys_hex.push_back(t["secret-key"]);
    const bool local = v.token.rfind("v4.local", 0) == 0;
    if (local || (v.expect_fail && !v.key_hex.empty())) out.push_back(std::move(v));
  }
  return out;
}

SecretBytes KeyFromHex(const std::string& hex) {
  auto b = HexDecode(hex);
  TOANI_CHECK(b.ok());
  return SecretBytes::Copy(*b);
}

class PasetoV4Vectors : public ::testing::TestWithParam<Vector> {};

TEST_P(PasetoV4Vectors, Vector) {
  const Vector& v = GetParam();
  if (!v.expect_fail) {
    ASSERT_FALSE(v.key_hex.empty());
    const SecretBytes key = KeyFromHex(v.key_hex);
    auto nonce = HexDecode(v.nonce_hex);
    ASSERT_TRUE(nonce.ok());
    auto token =
        PasetoV4LocalEncryptWithNonce(key, v.payload, v.footer, v.implicit_assertion, *nonce);
    ASSERT_TRUE(token.ok()) << token.status().ToString();
    EXPECT_EQ(*token, v.token);
    auto msg = PasetoV4LocalDecrypt(key, v.token, v.implicit_assertion);
    ASSERT_TRUE(msg.ok()) << msg.status().ToString();
    EXPECT_EQ(msg->payload, v.payload);
    EXPECT_EQ(msg->footer, v.footer);
    auto untrusted = PasetoUntrustedFooter(v.token);
    ASSERT_TRUE(untrusted.ok());
    EXPECT_EQ(*untrusted, v.footer);
    return;
  }
  // Must-fail vectors: refused under the local key if there is one, and under the
  // secret key of a v4.public vector (see LoadVectors about 4-F-1).
  std::vector<std::string> keys = v.other_keys_hex;
  if (!v.key_hex.empty()) keys.insert(keys.begin(), v.key_hex);
  ASSERT_FALSE(keys.empty()) << "must-fail vector without any key";
  for (const auto& hex : keys) {
    auto msg = PasetoV4LocalDecrypt(KeyFromHex(hex), v.token, v.implicit_assertion);
    EXPECT_FALSE(msg.ok()) << v.name << " accepted under key " << hex.substr(0, 8) << "...";
  }
}

std::string VectorName(const ::testing::TestParamInfo<Vector>& p) {
  std::string n = p.param.name;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Official, PasetoV4Vectors, ::testing::ValuesIn(LoadVectors()), VectorName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PasetoV4Vectors);

TEST(PasetoV4VectorFile, Present) {
  if (!fs::exists(VectorFile())) {
    GTEST_SKIP() << "PASETO vectors not found at " << VectorFile()
                 << " (TOANI_VECTORS_DIR); skipping";
  }
  const auto vectors = LoadVectors();
  size_t valid = 0, fail = 0;
  for (const auto& v : vectors) (v.expect_fail ? fail : valid)++;
  EXPECT_EQ(valid, 9u);  // 4-E-1 .. 4-E-9
  EXPECT_GE(fail, 4u);   // 4-F-1, 4-F-2 (v4.public), 4-F-3 (v3.local), 4-F-4, ...
}

// ---- Our own attacks -----------------------------------------------------------------

constexpr std::string_view kPayload = R"({"jti":"t-1","sub":"acme:agent:alice"})";
constexpr std::string_view kFooter = R"({"kid":"k4.lid.abc"})";
constexpr std::string_view kAssertion = R"({"tenant":"acme","measurement":"00ff"})";

struct Fixture : ::testing::Test {
  SecretBytes key = SecretBytes::Random(32);
  std::string token;
  void SetUp() override {
    auto t = PasetoV4LocalEncrypt(key, kPayload, kFooter, kAssertion);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    token = *t;
  }
  std::string Body() const {
    const size_t start = std::string_view("v4.local.").size();
    return token.substr(start, token.rfind('.') - start);
  }
  std::string FooterPart() const { return token.substr(token.rfind('.') + 1); }
  std::string WithBody(const std::string& body) const {
    return "v4.local." + body + "." + FooterPart();
  }
  void ExpectRefused(const std::string& t, std::string_view assertion = kAssertion) const {
    auto msg = PasetoV4LocalDecrypt(key, t, assertion);
    ASSERT_FALSE(msg.ok()) << t;
    EXPECT_EQ(msg.status().code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(msg.status().message(), "invalid token");  // one error for every failure
  }
};

using PasetoAttack = Fixture;

TEST_F(PasetoAttack, HonestTokenRoundTrips) {
  auto msg = PasetoV4LocalDecrypt(key, token, kAssertion);
  ASSERT_TRUE(msg.ok()) << msg.status().ToString();
  EXPECT_EQ(msg->payload, kPayload);
  EXPECT_EQ(msg->footer, kFooter);
  auto again = PasetoV4LocalEncrypt(key, kPayload, kFooter, kAssertion);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, token) << "nonce must be fresh";
}

// Nonces are drawn from the OS in batches (docs/performance.md): across many batches
// no nonce repeats, in this thread, in another thread, or in a forked child.
TEST_F(PasetoAttack, NoncesNeverRepeatAcrossBatchesThreadsAndFork) {
  auto nonce_of = [&](const std::string& t) {
    const size_t start = std::string_view("v4.local.").size();
    return t.substr(start, 43);  // the first 32 bytes' base64url (43 characters)
  };
  std::set<std::string> seen;
  auto mint = [&] {
    auto t = PasetoV4LocalEncrypt(key, kPayload, kFooter, kAssertion);
    EXPECT_TRUE(t.ok());
    return nonce_of(*t);
  };
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(mint()).second) << i;
  std::vector<std::string> other;
  std::thread th([&] {
    for (int i = 0; i < 100; ++i) other.push_back(mint());
  });
  th.join();
  for (const auto& n : other) EXPECT_TRUE(seen.insert(n).second);
  // A child forked mid-batch must not hand out the parent's next nonce.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string n = mint();
    (void)!::write(fds[1], n.data(), n.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string child(43, '\0');
  ASSERT_EQ(::read(fds[0], child.data(), child.size()), 43);
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  const std::string parent_next = mint();
  EXPECT_NE(child, parent_next);
  EXPECT_TRUE(seen.insert(child).second);
  EXPECT_TRUE(seen.insert(parent_next).second);
}

TEST_F(PasetoAttack, EveryFlippedBitInNonceCiphertextAndTagIsRefused) {
  auto raw = Base64UrlDecodeStrict(Body());
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->size(), 32 + kPayload.size() + 32);
  for (size_t i = 0; i < raw->size(); ++i) {
    for (int bit : {0, 7}) {
      Bytes bad = *raw;
      bad[i] ^= static_cast<uint8_t>(1u << bit);
      ExpectRefused(WithBody(Base64UrlEncode(bad)));
    }
  }
}

TEST_F(PasetoAttack, WrongImplicitAssertionOrKeyRefused) {
  ExpectRefused(token, "");
  ExpectRefused(token, R"({"tenant":"evil","measurement":"00ff"})");
  auto other = PasetoV4LocalDecrypt(SecretBytes::Random(32), token, kAssertion);
  EXPECT_FALSE(other.ok());
}

TEST_F(PasetoAttack, SwappedOrRemovedFooterRefused) {
  ExpectRefused("v4.local." + Body() + "." + Base64UrlEncode(AsBytes(R"({"kid":"k4.lid.xyz"})")));
  ExpectRefused("v4.local." + Body());
  ExpectRefused("v4.local." + Body() + ".");  // empty footer segment
  ExpectRefused(token + ".AAAA");             // extra segment
  // A footer from another genuine token under the same key.
  auto other = PasetoV4LocalEncrypt(key, kPayload, "other-footer", kAssertion);
  ASSERT_TRUE(other.ok());
  ExpectRefused("v4.local." + Body() + "." + other->substr(other->rfind('.') + 1));
}

TEST_F(PasetoAttack, PaddingAndNonCanonicalBase64Refused) {
  ExpectRefused(WithBody(Body() + "="));
  ExpectRefused(WithBody(Body() + "=="));
  ExpectRefused(token + "=");
  ExpectRefused(WithBody(Body() + " "));
  std::string std_alphabet = Body();
  for (char& c : std_alphabet) c = (c == '-') ? '+' : (c == '_') ? '/' : c;
  if (std_alphabet != Body()) ExpectRefused(WithBody(std_alphabet));
}

TEST_F(PasetoAttack, NonZeroTrailingBitsRefused) {
  // Choose a payload whose body length is not a multiple of 3, so the last base64url
  // character carries unused low bits; setting one must not decode to the same token.
  for (std::string payload : {std::string("a"), std::string("abc")}) {
    auto t = PasetoV4LocalEncrypt(key, payload, "", kAssertion);
    ASSERT_TRUE(t.ok());
    ASSERT_NE((64 + payload.size()) % 3, 0u);
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string bad = *t;
    const size_t idx = kAlphabet.find(bad.back());
    ASSERT_NE(idx, std::string_view::npos);
    ASSERT_EQ(idx & 1u, 0u) << "canonical encoding has zero trailing bits";
    bad.back() = kAlphabet[idx | 1u];
    auto msg = PasetoV4LocalDecrypt(key, bad, kAssertion);
    EXPECT_FALSE(msg.ok()) << bad;
    EXPECT_TRUE(PasetoV4LocalDecrypt(key, *t, kAssertion).ok());
  }
}

TEST_F(PasetoAttack, TruncatedTokensRefused) {
  ExpectRefused(WithBody(Body().substr(0, Body().size() - 1)));
  ExpectRefused(WithBody(Body().substr(0, Body().size() - 4)));
  ExpectRefused(WithBody(Body().substr(0, 84)));  // 63 bytes: shorter than nonce + tag
  ExpectRefused(token.substr(0, token.size() - 1));
  ExpectRefused("v4.local.");
  ExpectRefused("v4.local");
  ExpectRefused("");
  // Exactly nonce || tag (empty ciphertext) under a forged tag is refused too.
  ExpectRefused(WithBody(Base64UrlEncode(Bytes(64, 0))));
}

TEST_F(PasetoAttack, OtherHeadersRefused) {
  const std::string rest = token.substr(std::string_view("v4.local.").size());
  for (const char* h : {"v4.public.", "v3.local.", "v2.local.", "V4.local.", "v4.LOCAL.",
                        "v4c.local.", "v4.local..", " v4.local."}) {
    ExpectRefused(h + rest);
  }
}

TEST_F(PasetoAttack, EmptyPayloadAndFooterRoundTrip) {
  auto t = PasetoV4LocalEncrypt(key, "", "", "");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->find('.', 9), std::string::npos) << "no footer segment when footer is empty";
  auto msg = PasetoV4LocalDecrypt(key, *t, "");
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(msg->payload, "");
  EXPECT_EQ(msg->footer, "");
}

TEST_F(PasetoAttack, WrongKeySizeIsInvalidArgument) {
  EXPECT_EQ(PasetoV4LocalEncrypt(SecretBytes::Random(16), kPayload, "", "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PasetoV4LocalDecrypt(SecretBytes::Random(64), token, kAssertion).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(PasetoV4LocalEncryptWithNonce(key, kPayload, "", "", Bytes(24, 0)).ok());
}

TEST_F(PasetoAttack, UntrustedFooter) {
  auto f = PasetoUntrustedFooter(token);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, kFooter);
  EXPECT_FALSE(PasetoUntrustedFooter("v4.public." + Body() + "." + FooterPart()).ok());
  EXPECT_FALSE(PasetoUntrustedFooter(token + "=").ok());
  EXPECT_FALSE(PasetoUntrustedFooter("v4.local." + Body() + ".").ok());
  auto none = PasetoUntrustedFooter("v4.local." + Body());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "");
}

}  // namespace
}  // namespace toani::crypto
