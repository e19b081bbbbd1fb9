// Root custody (Shamir init/unseal/rekey), tenant key rotation and rewrap, and the
// strict token checks — against an in-process KeyService.
#include <gtest/gtest.h>

#include "common/encoding.h"
#include "crypto/hash.h"
#include "keyd/key_service.h"
#include "keyd/keyd_test_util.h"

namespace toani::keyd {
namespace {

using nlohmann::json;
using testing::Recipient;
using testing::SealTo;
using testing::TempDir;

bool Ok(const json& r) { return r.is_object() && r.value("ok", false); }
std::string Code(const json& r) {
  return r.contains("error") ? r["error"].value("code", "") : "ok";
}

class Keyd {
 public:
  Keyd(const std::string& dir, bool dev, std::string measurement = std::string(64, 'a'),
       SysTime* now = nullptr) {
    KeydOptions o;
    o.state_dir = dir;
    o.dev = dev;
    o.measurement = std::move(measurement);
    if (now != nullptr) o.clock = [now] { return *now; };
    auto s = KeyService::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    svc = std::move(s).value();
  }
  json H(const json& req) { return svc->Handle(req); }
  std::string Intake() { return H({{"op", "status"}})["intake_public_key"]; }
  json Unseal(const std::string& share) {
    return H({{"op", "operator.unseal"}, {"sealed_share", SealTo(Intake(), share)}});
  }
  json Import(const std::string& id, std::string_view secret, const std::string& tenant = "t1") {
    return H({{"op", "credential.import"},
              {"tenant", tenant},
              {"credential_id", id},
              {"version", 1},
              {"sealed", SealTo(Intake(), secret)}});
  }
  json Mint(const std::vector<std::string>& cred, const std::string& tenant = "t1") {
    return H(
        {{"op", "token.mint"},
         {"tenant", tenant},
         {"agent", "a"},
         {"user", "u"},
         {"ttl_seconds", 60},
         {"claims",
          {{"policy_id", "p"}, {"action", "x"}, {"params_hash", "sha256:00"}, {"cred", cred}}}});
  }
  // Releases and opens; "" when refused.
  std::string Release(const std::string& token, const std::string& id, const std::string& blob,
                      const std::string& tenant = "t1") {
    Recipient r;
    json rep = H({{"op", "credential.release"},
                  {"tenant", tenant},
                  {"token", token},
                  {"credential_id", id},
                  {"version", 1},
                  {"blob", blob},
                  {"recipient_public_key", r.PublicB64()}});
    return Ok(rep) ? r.Open(rep["sealed"]) : "";
  }
  std::unique_ptr<KeyService> svc;
};

// Initialises a Shamir keyd and returns the plaintext shares.
std::vector<std::string> Init(Keyd& k, int n, int t) {
  Recipient r;
  json rep = k.H({{"op", "operator.init"},
                  {"shares", n},
                  {"threshold", t},
                  {"recipient_public_key", r.PublicB64()}});
  EXPECT_TRUE(Ok(rep)) << rep.dump();
  std::vector<std::string> out;
  for (const auto& s : rep.value("shares", json::array())) out.push_back(r.Open(s));
  return out;
}

TEST(ShamirCustody, InitLeavesKeydSealedAndRefusesKeyOps) {
  TempDir d;
  Keyd k(d.path, /*dev=*/false);
  EXPECT_EQ(k.H({{"op", "status"}})["initialized"], false);
  EXPECT_EQ(Code(k.Import("c", "x")), "unavailable");
  auto shares = Init(k, 5, 3);
  ASSERT_EQ(shares.size(), 5u);
  for (const auto& s : shares) EXPECT_EQ(s.rfind("ts1.", 0), 0u) << s;
  json st = k.H({{"op", "status"}});
  EXPECT_EQ(st["sealed"], true);
  EXPECT_EQ(st["threshold"], 3);
  EXPECT_EQ(Code(k.Mint({"c"})), "unavailable");
  // A second init is refused: the shares exist once.
  Recipient r;
  EXPECT_EQ(Code(k.H({{"op", "operator.init"},
                      {"shares", 3},
                      {"threshold", 2},
                      {"recipient_public_key", r.PublicB64()}})),
            "failed-precondition");
  EXPECT_FALSE(std::filesystem::exists(d.path / "dev-root.key"));
}

TEST(ShamirCustody, UnsealNeedsThresholdDistinctCorrectShares) {
  TempDir d;
  std::vector<std::string> shares;
  {
    Keyd k(d.path, false);
    shares = Init(k, 5, 3);
  }
  Keyd k(d.path, false);  // a restart: sealed, needs shares
  // Too few shares: progress, still sealed, key ops refused.
  json r1 = k.Unseal(shares[0]);
  ASSERT_TRUE(Ok(r1)) << r1.dump();
  EXPECT_EQ(r1["progress"], 1);
  EXPECT_EQ(r1["sealed"], true);
  // Repeated share: refused, progress unchanged.
  EXPECT_EQ(Code(k.Unseal(shares[0])), "invalid-argument");
  json r2 = k.Unseal(shares[1]);
  EXPECT_EQ(r2["progress"], 2);
  EXPECT_EQ(r2["sealed"], true);
  EXPECT_EQ(Code(k.Import("c", "x")), "unavailable");
  // A malformed share (one character changed): refused by the checksum.
  std::string typo = shares[2];
  typo[10] = typo[10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(Code(k.Unseal(typo)), "invalid-argument");
  // A share of another root (another init): refused.
  TempDir other;
  Keyd k2(other.path, false);
  auto foreign = Init(k2, 3, 2);
  EXPECT_EQ(Code(k.Unseal(foreign[2])), "invalid-argument");
  EXPECT_EQ(k.H({{"op", "status"}})["progress"], 2);
  // A well-formed but wrong share (right root id and checksum, wrong value): the
  // combination fails the key check, progress resets, still sealed.
  auto raw = Base64UrlDecodeStrict(std::string_view(shares[2]).substr(4));
  ASSERT_TRUE(raw.ok());
  Bytes forged = *raw;
  forged[9] ^= 0x55;  // y[0]
  std::string pre = "toani.share.v1" + ToString(std::span<const uint8_t>(forged.data(), 41));
  auto sum = crypto::Sha256(AsBytes(pre));
  std::copy(sum.begin(), sum.begin() + 4, forged.begin() + 41);
  json wrong = k.Unseal("ts1." + Base64UrlEncode(forged));
  EXPECT_EQ(Code(wrong), "permission-denied") << wrong.dump();
  json st = k.H({{"op", "status"}});
  EXPECT_EQ(st["sealed"], true);
  EXPECT_EQ(st["progress"], 0);
  // Three correct shares, any three: unsealed.
  k.Unseal(shares[4]);
  k.Unseal(shares[1]);
  json done = k.Unseal(shares[3]);
  EXPECT_EQ(done["sealed"], false) << done.dump();
  EXPECT_TRUE(Ok(k.Import("c", "x")));
}

TEST(ShamirCustody, CredentialsSurviveRestartAndRekey) {
  TempDir d;
  std::vector<std::string> shares;
  std::string blob;
  {
    Keyd k(d.path, false);
    shares = Init(k, 3, 2);
    k.Unseal(shares[0]);
    k.Unseal(shares[1]);
    json imp = k.Import("c1", "hunter2");
    ASSERT_TRUE(Ok(imp)) << imp.dump();
    blob = imp["blob"];
  }
  Keyd k(d.path, false);
  // Rekey from a quorum of current shares: new shares, same L0.
  Recipient r;
  json rk = k.H({{"op", "operator.rekey"},
                 {"sealed_shares", {SealTo(k.Intake(), shares[0]), SealTo(k.Intake(), shares[2])}},
                 {"shares", 4},
                 {"threshold", 3},
                 {"recipient_public_key", r.PublicB64()}});
  ASSERT_TRUE(Ok(rk)) << rk.dump();
  std::vector<std::string> fresh;
  for (const auto& s : rk["shares"]) fresh.push_back(r.Open(s));
  ASSERT_EQ(fresh.size(), 4u);
  // Too few current shares for a rekey: refused.
  EXPECT_EQ(Code(k.H({{"op", "operator.rekey"},
                      {"sealed_shares", {SealTo(k.Intake(), fresh[0])}},
                      {"shares", 2},
                      {"threshold", 2},
                      {"recipient_public_key", r.PublicB64()}})),
            "invalid-argument");
  // Old shares no longer work; the new ones do, and the old credential opens.
  EXPECT_EQ(Code(k.Unseal(shares[0])), "invalid-argument");
  k.Unseal(fresh[3]);
  k.Unseal(fresh[0]);
  EXPECT_EQ(k.Unseal(fresh[1])["sealed"], false);
  json m = k.Mint({"c1"});
  ASSERT_TRUE(Ok(m));
  EXPECT_EQ(k.Release(m["token"], "c1", blob), "hunter2");
}

TEST(TenantKeys, RotationKeepsOldCredentialsAndRewrapMovesThem) {
  TempDir d;
  Keyd k(d.path, true);
  json a = k.Import("ca", "secret-a");
  ASSERT_TRUE(Ok(a));
  EXPECT_EQ(a["key_version"], 1);
  json old_token = k.Mint({"ca", "cb"});
  json rot = k.H({{"op", "tenant.rotate"}, {"tenant", "t1"}});
  ASSERT_TRUE(Ok(rot)) << rot.dump();
  EXPECT_EQ(rot["key_version"], 2);
  json b = k.Import("cb", "secret-b");
  EXPECT_EQ(b["key_version"], 2);  // new credentials use the new version
  // A token minted before the rotation still verifies (its kid names version 1).
  EXPECT_TRUE(Ok(k.H({{"op", "token.verify"}, {"tenant", "t1"}, {"token", old_token["token"]}})));
  json t = k.Mint({"ca"});
  EXPECT_EQ(k.Release(t["token"], "ca", a["blob"]), "secret-a");  // old version still opens
  json rw = k.H({{"op", "credential.rewrap"},
                 {"tenant", "t1"},
                 {"credential_id", "ca"},
                 {"version", 1},
                 {"blob", a["blob"]}});
  ASSERT_TRUE(Ok(rw)) << rw.dump();
  EXPECT_EQ(rw["key_version"], 2);
  EXPECT_NE(rw["blob"], a["blob"]);
  EXPECT_NE(rw["fingerprint"], a["fingerprint"]);  // the fingerprint key follows L1
  json t2 = k.Mint({"ca"});
  EXPECT_EQ(k.Release(t2["token"], "ca", rw["blob"]), "secret-a");
  // The keyring file holds both versions, wrapped: neither L1 in clear.
  Keyd again(d.path, true);
  json t3 = again.Mint({"cb"});
  EXPECT_EQ(again.Release(t3["token"], "cb", b["blob"]), "secret-b");
  // A blob of another tenant or id does not open (associated data).
  json t4 = k.Mint({"cb"});
  EXPECT_EQ(k.Release(t4["token"], "cb", rw["blob"]), "");
}

class TokenChecks : public ::testing::Test {
 protected:
  TempDir d_;
  SysTime now_ = std::chrono::system_clock::now();
  Keyd k_{d_.path, true, std::string(64, 'a'), &now_};
  json Verify(const std::string& token, const std::string& tenant = "t1") {
    return k_.H({{"op", "token.verify"}, {"tenant", tenant}, {"token", token}});
  }
};

TEST_F(TokenChecks, EverySingleByteChangeIsRefused) {
  json m = k_.Mint({"c"});
  const std::string token = m["token"];
  ASSERT_TRUE(Ok(Verify(token)));
  size_t refused = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    for (char repl : {'A', 'z', '.', '_'}) {
      if (token[i] == repl) continue;
      std::string t = token;
      t[i] = repl;
      json v = Verify(t);
      EXPECT_FALSE(Ok(v)) << "byte " << i << " -> " << repl;
      refused += Ok(v) ? 0 : 1;
    }
  }
  EXPECT_GT(refused, 3 * token.size());
  EXPECT_FALSE(Ok(Verify(token + "A")));
  EXPECT_FALSE(Ok(Verify(token.substr(0, token.size() - 1))));
}

TEST_F(TokenChecks, ExpiredNotYetValidWrongTenantWrongAssertionRefused) {
  json m = k_.Mint({"c"});
  const std::string token = m["token"];
  ASSERT_TRUE(Ok(Verify(token)));
  now_ += std::chrono::seconds(61);
  json exp = Verify(token);
  EXPECT_FALSE(Ok(exp));
  EXPECT_NE(exp["error"].value("message", "").find("expired"), std::string::npos);
  now_ -= std::chrono::seconds(61 + 30);  // before iat/nbf
  json early = Verify(token);
  EXPECT_FALSE(Ok(early));
  EXPECT_NE(early["error"].value("message", "").find("not valid yet"), std::string::npos);
  now_ += std::chrono::seconds(30);
  EXPECT_TRUE(Ok(Verify(token)));
  EXPECT_FALSE(Ok(Verify(token, "t2")));  // wrong tenant
  // Another keyd build (another measurement) on the same keys: the implicit assertion
  // differs, so the token does not verify there.
  Keyd other(d_.path, true, std::string(64, 'b'), &now_);
  EXPECT_FALSE(Ok(other.H({{"op", "token.verify"}, {"tenant", "t1"}, {"token", token}})));
}

TEST_F(TokenChecks, SecondReleaseForOneJtiRefused) {
  json imp = k_.Import("c", "pw");
  json m = k_.Mint({"c"});
  EXPECT_EQ(k_.Release(m["token"], "c", imp["blob"]), "pw");
  EXPECT_EQ(k_.Release(m["token"], "c", imp["blob"]), "");
  // ... and a token not naming the credential releases nothing.
  json other = k_.Mint({"d"});
  EXPECT_EQ(k_.Release(other["token"], "c", imp["blob"]), "");
}

TEST(Attestation, EvidenceBindsKeysAndNonceAndSimulatedNeedsConsent) {
  TempDir d;
  Keyd k(d.path, true);
  uint8_t nonce[32];
  randombytes_buf(nonce, sizeof nonce);
  json ev = k.H({{"op", "attestation.evidence"},
                 {"nonce", Base64UrlEncode(std::span<const uint8_t>(nonce, 32))}});
  ASSERT_TRUE(Ok(ev)) << ev.dump();
  auto verifier = MakeVerifier();
  VerifyPolicy strict;
  EXPECT_EQ(verifier->Verify(ev["evidence"], nonce, strict).status().code(),
            StatusCode::kPermissionDenied);
  VerifyPolicy allow{true, std::string(64, 'a')};
  auto claims = verifier->Verify(ev["evidence"], nonce, allow);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_TRUE(claims->simulated);
  EXPECT_EQ(claims->public_keys["intake"], k.Intake());
  uint8_t other_nonce[32] = {1};
  EXPECT_FALSE(verifier->Verify(ev["evidence"], other_nonce, allow).ok());
  json swapped = ev["evidence"];
  swapped["public_keys"]["intake"] = Recipient().PublicB64();  // a MITM's key
  EXPECT_FALSE(verifier->Verify(swapped, nonce, allow).ok());
  VerifyPolicy wrong_measurement{true, std::string(64, 'c')};
  EXPECT_FALSE(verifier->Verify(ev["evidence"], nonce, wrong_measurement).ok());
  json sgx = ev["evidence"];
  sgx["backend"] = "sgx-dcap";
  EXPECT_EQ(verifier->Verify(sgx, nonce, allow).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace toani::keyd
