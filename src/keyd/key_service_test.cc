#include "keyd/key_service.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/encoding.h"
#include "common/jcs.h"
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

MintRequest SampleMint() {
  MintRequest r;
  r.tenant = "dev";
  r.agent = "a";
  r.user = "u";
  r.ttl_seconds = 60;
  r.policy_id = "p";
  r.policy_version = 1;
  r.action = "x";
  r.params_hash = "sha256:00";
  r.risk_tier = "high";
  r.hitl = NoApprovalHitl();
  r.cred = {"cred_1"};
  return r;
}

TEST(TokenMintFrame, RoundTripsEveryField) {
  MintRequest r = SampleMint();
  r.user = "alice@example.com";
  r.policy_version = (int64_t{1} << 53) - 1;
  r.hitl = {{"confirmed", true}, {"approvers", {"spiffe://x/a"}}, {"proof", "sha256:ab"}};
  r.cred = {"cred_1", "cred_2"};
  auto f = EncodeMintRequest(r);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(static_cast<uint8_t>((*f)[0]), kMintRequest);
  auto d = DecodeMintRequest(*f);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->tenant, r.tenant);
  EXPECT_EQ(d->agent, r.agent);
  EXPECT_EQ(d->user, r.user);
  EXPECT_EQ(d->ttl_seconds, r.ttl_seconds);
  EXPECT_EQ(d->policy_id, r.policy_id);
  EXPECT_EQ(d->policy_version, r.policy_version);
  EXPECT_EQ(d->action, r.action);
  EXPECT_EQ(d->params_hash, r.params_hash);
  EXPECT_EQ(d->risk_tier, r.risk_tier);
  EXPECT_EQ(d->hitl, r.hitl);
  EXPECT_EQ(d->cred, r.cred);
  // No approval travels as an empty hitl field and comes back as the default object.
  auto plain = EncodeMintRequest(SampleMint());
  ASSERT_TRUE(plain.ok());
  EXPECT_LT(plain->size(), f->size());
  EXPECT_EQ(DecodeMintRequest(*plain)->hitl, NoApprovalHitl());

  MintedToken t{"v4.local.abc", std::string(22, 'j'), "2026-11-22T12:00:00Z"};
  auto back = DecodeMintReply(EncodeMintReply(t));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->token, t.token);
  EXPECT_EQ(back->jti, t.jti);
  EXPECT_EQ(back->exp, t.exp);
}

TEST(TokenMintFrame, RefusesEveryTruncationTrailingBytesAndOutOfRangeValues) {
  MintRequest r = SampleMint();
  r.hitl = {{"confirmed", true}, {"approvers", json::array()}, {"proof", nullptr}};
  const std::string f = *EncodeMintRequest(r);
  for (size_t n = 0; n < f.size(); ++n)
    EXPECT_FALSE(DecodeMintRequest(f.substr(0, n)).ok()) << "truncated to " << n;
  EXPECT_FALSE(DecodeMintRequest(f + "x").ok());
  std::string wrong_type = f;
  wrong_type[0] = 0x01;
  EXPECT_FALSE(DecodeMintRequest(wrong_type).ok());
  std::string ttl0 = f;  // bytes 1..2: ttl_seconds
  ttl0[1] = 0, ttl0[2] = 0;
  EXPECT_FALSE(DecodeMintRequest(ttl0).ok());
  std::string ttl_big = f;
  ttl_big[1] = 0x0e, ttl_big[2] = 0x11;  // 3601
  EXPECT_FALSE(DecodeMintRequest(ttl_big).ok());
  std::string version_big = f;                   // bytes 3..10: policy_version
  version_big[3] = 0x00, version_big[4] = 0x20;  // 2^53
  EXPECT_FALSE(DecodeMintRequest(version_big).ok());
  // A hitl that is not a JSON object.
  MintRequest arr = SampleMint();
  arr.hitl = json::array({1});
  EXPECT_FALSE(EncodeMintRequest(arr).ok());
  std::string hitl_array = *EncodeMintRequest(SampleMint());
  const size_t hitl_at = hitl_array.size() - 2 - 2 - 6 - 4;  // count, str16 "cred_1", length
  ASSERT_EQ(hitl_array.substr(hitl_at, 4), std::string(4, '\0'));
  hitl_array = hitl_array.substr(0, hitl_at) + std::string("\0\0\0\x02", 4) + "[]" +
               hitl_array.substr(hitl_at + 4);
  EXPECT_FALSE(DecodeMintRequest(hitl_array).ok());
  // Empty and overlong fields cannot be encoded, and are refused when decoded.
  MintRequest empty = SampleMint();
  empty.action = "";
  EXPECT_FALSE(EncodeMintRequest(empty).ok());
  MintRequest long_tenant = SampleMint();
  long_tenant.tenant = std::string(129, 't');
  EXPECT_FALSE(EncodeMintRequest(long_tenant).ok());
  // A reply must be exact too.
  const std::string reply =
      EncodeMintReply({"v4.local.abc", std::string(22, 'j'), std::string(20, 'e')});
  for (size_t n = 0; n < reply.size(); ++n) EXPECT_FALSE(DecodeMintReply(reply.substr(0, n)).ok());
  EXPECT_FALSE(DecodeMintReply(reply + "x").ok());
}

// The binary frame (what the server sends) and the JSON op mint the same claims.
TEST_F(KeyServiceTest, BinaryMintMintsWhatTheJsonOpMints) {
  json byjson = Mint();
  ASSERT_TRUE(byjson["ok"].get<bool>()) << byjson.dump();
  MintRequest r = SampleMint();
  r.risk_tier = "low";  // the JSON op's default, as Mint() sends none
  std::string reply = svc_->HandleBinary(*EncodeMintRequest(r));
  ASSERT_EQ(static_cast<uint8_t>(reply[0]), kMintReply) << reply;
  auto t = DecodeMintReply(reply);
  ASSERT_TRUE(t.ok());
  json a = svc_->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", byjson["token"]}});
  json b = svc_->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", t->token}});
  ASSERT_TRUE(a["ok"].get<bool>() && b["ok"].get<bool>()) << a.dump() << b.dump();
  EXPECT_EQ(b["claims"]["jti"], t->jti);
  EXPECT_EQ(b["claims"]["exp"], t->exp);
  EXPECT_NE(a["claims"]["jti"], b["claims"]["jti"]);
  for (json* c : {&a["claims"], &b["claims"]}) c->erase("jti");
  EXPECT_EQ(a["claims"], b["claims"]);
  // Its rules are the JSON op's: a ':' in the agent is refused, nothing minted.
  MintRequest colon = SampleMint();
  colon.agent = "a:b";
  json err = json::parse(svc_->HandleBinary(*EncodeMintRequest(colon)));
  EXPECT_FALSE(err["ok"].get<bool>());
  EXPECT_EQ(err["error"]["code"], "invalid-argument");
  // A malformed frame gets an error reply, not a token.
  json bad = json::parse(svc_->HandleBinary(std::string("\x03\x00", 2)));
  EXPECT_EQ(bad["error"]["code"], "invalid-argument");
}

// The hand-written claims are exactly the canonical form of the claims object, for
// awkward values too: non-ASCII and control characters, nested hitl members out of
// order, several or no credentials, the largest and a negative version.
TEST(CanonicalClaimsTest, AreTheCanonicalFormOfTheClaimsObject) {
  MintRequest r = SampleMint();
  const auto claims = [](const MintRequest& m) {
    return json{{"jti", "J"},
                {"iss", "toani-keyd"},
                {"sub", m.tenant + ":" + m.agent + ":" + m.user},
                {"iat", "2026-01-01T00:00:00Z"},
                {"nbf", "2026-01-01T00:00:00Z"},
                {"exp", "2026-01-01T00:01:00Z"},
                {"policy_id", m.policy_id},
                {"policy_version", m.policy_version},
                {"action", m.action},
                {"params_hash", m.params_hash},
                {"risk_tier", m.risk_tier},
                {"hitl", m.hitl},
                {"cred", m.cred},
                {"tee", {{"measurement", "M\u00e9"}, {"simulated", true}}}};
  };
  std::vector<MintRequest> cases = {r};
  MintRequest odd = r;
  odd.user = "\xc3\xa9l\xc3\xa8ve \"q\" \\ \n\t\x01 \xf0\x9f\x94\x91";
  odd.action = "bank.\xe2\x82\xac";
  odd.hitl = {{"z", 1}, {"a", {{"y", 2.5}, {"b", nullptr}}}, {"approvers", {"x", "\x7f"}}};
  odd.cred = {"c2", "c1", "c\u00fc"};
  odd.policy_version = (int64_t{1} << 53) - 1;
  cases.push_back(odd);
  MintRequest none = r;
  none.cred.clear();
  none.policy_version = -7;
  cases.push_back(none);
  for (const MintRequest& m : cases) {
    auto got = CanonicalClaims(m, "J", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "M\u00e9");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto want = TryCanonicalizeJson(claims(m));
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(*got, *want);
  }
  MintRequest bad = r;
  bad.user = "\xff";
  EXPECT_EQ(CanonicalClaims(bad, "J", "t", "t", "m").status().code(), StatusCode::kInvalidArgument);
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
  // The binary token.mint frame over the socket: a token that verifies; a malformed
  // frame is refused and keyd reads on.
  auto minted = (*p)->CallBinary(*EncodeMintRequest(SampleMint()));
  ASSERT_TRUE(minted.ok()) << minted.status().ToString();
  auto t = DecodeMintReply(*minted);
  ASSERT_TRUE(t.ok());
  auto v = (*p)->Call({{"op", "token.verify"}, {"tenant", "dev"}, {"token", t->token}});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)["claims"]["jti"], t->jti);
  EXPECT_EQ((*v)["claims"]["risk_tier"], "high");
  auto refused = (*p)->CallBinary(std::string("\x03\x00\x3c", 3));
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*p)->Call({{"op", "status"}}).ok());
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
