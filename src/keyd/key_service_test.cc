#include "keyd/key_service.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "keyd/client.h"

namespace toani::keyd {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/toani-keyd-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

class KeyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KeydOptions o;
    o.state_dir = dir_.path.string();
    o.dev = true;
    o.measurement = std::string(64, 'a');
    o.clock = [this] { return now_; };
    auto s = KeyService::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    svc_ = std::move(s).value();
    intake_pk_ = svc_->Handle({{"op", "status"}})["intake_public_key"];
  }

  std::string Seal(std::string_view secret) {
    auto pk = Base64UrlDecodeStrict(intake_pk_);
    Bytes out(secret.size() + crypto_box_SEALBYTES);
    crypto_box_seal(out.data(), reinterpret_cast<const uint8_t*>(secret.data()), secret.size(),
                    pk->data());
    return Base64UrlEncode(out);
  }

  json Import(const std::string& id, std::string_view secret) {
    return svc_->Handle({{"op", "credential.import"},
                         {"tenant", "dev"},
                         {"credential_id", id},
                         {"version", 1},
                         {"sealed", Seal(secret)}});
  }

  json Mint(const std::string& tenant = "dev", std::vector<std::string> cred = {"cred_1"}) {
    return svc_->Handle({{"op", "token.mint"},
                         {"tenant", tenant},
                         {"agent", "a"},
                         {"user", "u"},
                         {"ttl_seconds", 60},
                         {"claims",
                          {{"policy_id", "p"},
                           {"policy_version", 1},
                           {"action", "x"},
                           {"params_hash", "sha256:00"},
                           {"cred", cred}}}});
  }

  json Release(const std::string& token, const std::string& blob, Bytes* rpk_out,
               SecretBytes* rsk_out) {
    Bytes pk(crypto_box_PUBLICKEYBYTES);
    SecretBytes sk(crypto_box_SECRETKEYBYTES);
    crypto_box_keypair(pk.data(), sk.UnsafeMutableData());
    json r = svc_->Handle({{"op", "credential.release"},
                           {"tenant", "dev"},
                           {"token", token},
                           {"credential_id", "cred_1"},
                           {"version", 1},
                           {"blob", blob},
                           {"recipient_public_key", Base64UrlEncode(pk)}});
    *rpk_out = pk;
    *rsk_out = std::move(sk);
    return r;
  }

  TempDir dir_;
  SysTime now_ = std::chrono::system_clock::now();
  std::unique_ptr<KeyService> svc_;
  std::string intake_pk_;
};

TEST(K4LidVectors, MatchOfficialVectors) {
  fs::path file = fs::path(TOANI_VECTORS_DIR) / "paseto" / "k4.lid.json";
  if (!fs::exists(file))
    GTEST_SKIP() << "vectors absent: " << file << " (../shared/vectors not present)";
  std::ifstream in(file);
  json doc = json::parse(in);
  int checked = 0;
  for (const auto& t : doc["tests"]) {
    auto key = HexDecode(t["key"].get<std::string>());
    ASSERT_TRUE(key.ok());
    auto lid = KeyService::K4Lid(SecretBytes::Copy(*key));
    if (t["expect-fail"].get<bool>()) {
      EXPECT_FALSE(lid.ok()) << t["name"];
    } else {
      ASSERT_TRUE(lid.ok()) << t["name"];
      EXPECT_EQ(*lid, t["paserk"].get<std::string>()) << t["name"];
    }
    ++checked;
  }
  EXPECT_GE(checked, 4);
}

TEST_F(KeyServiceTest, ImportMintReleaseRoundTrip) {
  json imp = Import("cred_1", "s3cret-value");
  ASSERT_TRUE(imp["ok"].get<bool>()) << imp.dump();
  std::string blob = imp["blob"];
  EXPECT_EQ(blob.find("s3cret"), std::string::npos);
  EXPECT_EQ(imp["fingerprint"].get<std::string>().rfind("hmac-sha256:", 0), 0u);
  json m = Mint();
  ASSERT_TRUE(m["ok"].get<bool>()) << m.dump();
  json v = svc_->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", m["token"]}});
  ASSERT_TRUE(v["ok"].get<bool>()) << v.dump();
  EXPECT_EQ(v["claims"]["sub"], "dev:a:u");
  EXPECT_EQ(v["claims"]["tee"]["simulated"], true);
  Bytes pk;
  SecretBytes sk;
  json r = Release(m["token"], blob, &pk, &sk);
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  auto sealed = Base64UrlDecodeStrict(r["sealed"].get<std::string>());
  ASSERT_TRUE(sealed.ok());
  std::string plain(sealed->size() - crypto_box_SEALBYTES, '\0');
  ASSERT_EQ(crypto_box_seal_open(reinterpret_cast<uint8_t*>(plain.data()), sealed->data(),
                                 sealed->size(), pk.data(), sk.UnsafeBytes().data()),
            0);
  EXPECT_EQ(plain, "s3cret-value");
}

TEST_F(KeyServiceTest, ReleaseOncePerJti) {
  std::string blob = Import("cred_1", "v")["blob"];
  std::string token = Mint()["token"];
  Bytes pk;
  SecretBytes sk;
  EXPECT_TRUE(Release(token, blob, &pk, &sk)["ok"].get<bool>());
  json again = Release(token, blob, &pk, &sk);
  EXPECT_FALSE(again["ok"].get<bool>());
  EXPECT_EQ(again["error"]["code"], "already-exists");
}

TEST_F(KeyServiceTest, ReleaseRefusesCredentialNotNamed) {
  std::string blob = Import("cred_1", "v")["blob"];
  std::string token = Mint("dev", {"cred_other"})["token"];
  Bytes pk;
  SecretBytes sk;
  json r = Release(token, blob, &pk, &sk);
  EXPECT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"]["code"], "permission-denied");
}

TEST_F(KeyServiceTest, ExpiredTokenRefused) {
  std::string token = Mint()["token"];
  now_ += std::chrono::seconds(61);
  json v = svc_->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", token}});
  EXPECT_FALSE(v["ok"].get<bool>());
  EXPECT_NE(v["error"]["message"].get<std::string>().find("expired"), std::string::npos);
}

TEST_F(KeyServiceTest, TokenOfAnotherTenantRefused) {
  std::string token = Mint("other")["token"];
  json v = svc_->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", token}});
  EXPECT_FALSE(v["ok"].get<bool>());
}

TEST_F(KeyServiceTest, TamperedTokenRefused) {
  std::string token = Mint()["token"];
  for (size_t pos : {size_t{12}, token.size() / 2, token.rfind('.') - 2}) {
    std::string bad = token;
    bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
    json v = svc_->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", bad}});
    EXPECT_FALSE(v["ok"].get<bool>()) << "tampered at " << pos;
  }
}

TEST_F(KeyServiceTest, BadInputGetsClearErrors) {
  EXPECT_EQ(svc_->Handle({{"op", "nope"}})["error"]["code"], "invalid-argument");
  EXPECT_EQ(svc_->Handle({{"op", "credential.import"}, {"tenant", "dev"}})["error"]["code"],
            "invalid-argument");
  json bad = svc_->Handle(
      {{"op", "credential.import"},
       {"tenant", "dev"},
       {"credential_id", "c"},
       {"version", 1},
       {"sealed",
        Base64UrlEncode(AsBytes("not a sealed box at all, long enough to pass length"))}});
  EXPECT_EQ(bad["error"]["code"], "invalid-argument");
}

TEST_F(KeyServiceTest, RootKeyAndTenantKeysPersistAcrossRestarts) {
  json m = Mint();
  ASSERT_TRUE(m["ok"] == true);
  KeydOptions o;
  o.state_dir = dir_.path.string();
  o.dev = true;
  o.measurement = std::string(64, 'a');
  o.clock = [this] { return now_; };
  auto again = KeyService::Open(o);
  ASSERT_TRUE(again.ok());
  // Same L0 and keyring: a token minted before the restart still verifies.
  json v = (*again)->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", m["token"]}});
  EXPECT_TRUE(v["ok"] == true) << v.dump();
  // The intake key is made fresh at every start (clients fetch it before sealing).
  EXPECT_NE((*again)->Handle({{"op", "status"}})["intake_public_key"], intake_pk_);
  EXPECT_EQ(fs::status(dir_.path / "dev-root.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(fs::exists(dir_.path / "keyring.json"));
}

TEST(KeydProcessTest, SpawnsAndAnswersOverSocket) {
  TempDir dir;
  std::string keyd = std::string(TOANI_BUILD_DIR) + "/bin/toani-keyd";
  auto p = KeydProcess::Spawn(keyd, dir.path.string());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto st = (*p)->Call({{"op", "status"}});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ((*st)["measurement"].get<std::string>().size(), 64u);
  auto bad = (*p)->Call({{"op", "token.verify"}, {"tenant", "dev"}, {"token", "v4.local.AAAA"}});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnauthenticated);
}

// The key boundary may link only libsodium and libcrypto (plus the C/C++ runtime).
TEST(KeydLinkTest, LinksOnlySodiumAndCrypto) {
  std::string keyd = std::string(TOANI_BUILD_DIR) + "/bin/toani-keyd";
  FILE* p = ::popen(("ldd " + keyd).c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[512];
  std::vector<std::string> libs;
  while (std::fgets(line, sizeof line, p)) libs.emplace_back(line);
  ::pclose(p);
  ASSERT_FALSE(libs.empty());
  const char* allowed[] = {"linux-vdso", "libsodium", "libcrypto", "libstdc++", "libm.", "libgcc_s",
                           "libc.",      "ld-linux",  "libasan",   "libubsan",  "libz."};
  bool saw_sodium = false;
  for (const auto& l : libs) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || l.find(a) != std::string::npos;
    EXPECT_TRUE(ok) << "unexpected library in keyd: " << l;
    saw_sodium = saw_sodium || l.find("libsodium") != std::string::npos;
  }
  EXPECT_TRUE(saw_sodium);
}

}  // namespace
}  // namespace toani::keyd
