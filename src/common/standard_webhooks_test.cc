// Standard Webhooks: the spec's published example, attacks on verification, and
// agreement with the npm reference library `standardwebhooks` in both directions.
#include "common/standard_webhooks.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <ctime>
#include <string>

#include "common/encoding.h"

namespace toani {
namespace {

// The example from the Standard Webhooks reference implementations' test suites.
constexpr std::string_view kSpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kSpecId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSpecTs = 1614265330;
constexpr std::string_view kSpecBody = R"({"test": 2432232314})";
constexpr std::string_view kSpecSig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

SecretBytes SpecKey() {
  auto k = ParseWebhookSecret(kSpecSecret);
  TOANI_CHECK(k.ok());
  return std::move(k).value();
}

TEST(StandardWebhooks, SignsTheSpecExample) {
  EXPECT_EQ(SignWebhook(SpecKey(), kSpecId, kSpecTs, kSpecBody), kSpecSig);
  std::string ts = std::to_string(kSpecTs);
  EXPECT_TRUE(VerifyWebhook(SpecKey(), {kSpecId, ts, kSpecSig}, kSpecBody, kSpecTs).ok());
}

TEST(StandardWebhooks, SecretRoundTripAndBounds) {
  SecretBytes k = GenerateWebhookSecret();
  std::string s = FormatWebhookSecret(k);
  ASSERT_TRUE(s.starts_with("whsec_"));
  auto back = ParseWebhookSecret(s);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->ConstantTimeEquals(k));
  EXPECT_FALSE(ParseWebhookSecret("whsec_not*base64").ok());
  EXPECT_FALSE(ParseWebhookSecret("whsec_" + Base64Encode(Bytes(16, 1))).ok());  // too short
  EXPECT_FALSE(ParseWebhookSecret("whsec_" + Base64Encode(Bytes(65, 1))).ok());  // too long
  EXPECT_FALSE(ParseWebhookSecret("").ok());
}

TEST(StandardWebhooks, RefusesTamperingStalenessAndJunk) {
  SecretBytes k = SpecKey();
  const int64_t now = 1'800'000'000;
  std::string ts = std::to_string(now);
  std::string sig = SignWebhook(k, "msg_1", now, "{}");
  ASSERT_TRUE(VerifyWebhook(k, {"msg_1", ts, sig}, "{}", now).ok());

  auto code = [&](WebhookHeaders h, std::string_view body, int64_t at) {
    Status st = VerifyWebhook(k, h, body, at);
    EXPECT_FALSE(st.ok());
    return st.code();
  };
  EXPECT_EQ(code({"msg_1", ts, sig}, "{ }", now), StatusCode::kUnauthenticated);  // body changed
  EXPECT_EQ(code({"msg_2", ts, sig}, "{}", now), StatusCode::kUnauthenticated);   // id changed
  EXPECT_EQ(code({"msg_1", std::to_string(now + 1), sig}, "{}", now),
            StatusCode::kUnauthenticated);  // ts changed
  EXPECT_EQ(code({"", ts, sig}, "{}", now), StatusCode::kUnauthenticated);
  EXPECT_EQ(code({"msg_1", "", sig}, "{}", now), StatusCode::kUnauthenticated);
  EXPECT_EQ(code({"msg_1", ts, ""}, "{}", now), StatusCode::kUnauthenticated);
  for (std::string bad :
       {"-1", "+1800000000", " 1800000000", "18e8", "1800000000.0", "99999999999999999999"}) {
    EXPECT_EQ(code({"msg_1", bad, sig}, "{}", now), StatusCode::kUnauthenticated) << bad;
  }
  // Stale and future timestamps: signed correctly, outside the 5-minute window.
  std::string old_ts = std::to_string(now - 301);
  std::string old_sig = SignWebhook(k, "msg_1", now - 301, "{}");
  Status stale = VerifyWebhook(k, {"msg_1", old_ts, old_sig}, "{}", now);
  EXPECT_EQ(stale.message(), "webhook: timestamp too old");
  std::string new_ts = std::to_string(now + 301);
  std::string new_sig = SignWebhook(k, "msg_1", now + 301, "{}");
  EXPECT_EQ(VerifyWebhook(k, {"msg_1", new_ts, new_sig}, "{}", now).message(),
            "webhook: timestamp too new");
  // Exactly at the edge is still fresh.
  std::string edge_ts = std::to_string(now - 300);
  EXPECT_TRUE(
      VerifyWebhook(k, {"msg_1", edge_ts, SignWebhook(k, "msg_1", now - 300, "{}")}, "{}", now)
          .ok());
  // A different key's signature, other versions, truncated and malformed entries.
  SecretBytes other = GenerateWebhookSecret();
  EXPECT_EQ(code({"msg_1", ts, SignWebhook(other, "msg_1", now, "{}")}, "{}", now),
            StatusCode::kUnauthenticated);
  std::string b64 = sig.substr(3);
  EXPECT_EQ(code({"msg_1", ts, "v2," + b64}, "{}", now), StatusCode::kUnauthenticated);
  EXPECT_EQ(code({"msg_1", ts, "v1a," + b64}, "{}", now), StatusCode::kUnauthenticated);
  EXPECT_EQ(code({"msg_1", ts, "v1," + b64.substr(0, 20)}, "{}", now),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(code({"msg_1", ts, "v1 " + b64}, "{}", now), StatusCode::kUnauthenticated);
  EXPECT_EQ(code({"msg_1", ts, b64}, "{}", now), StatusCode::kUnauthenticated);
  EXPECT_EQ(code({"msg_1", ts, "v1,,,"}, "{}", now), StatusCode::kUnauthenticated);
  EXPECT_EQ(code({std::string(300, 'x'), ts, sig}, "{}", now), StatusCode::kUnauthenticated);
}

TEST(StandardWebhooks, AcceptsAnyOfSeveralSignatures) {
  SecretBytes k = SpecKey();
  const int64_t now = 1'800'000'000;
  std::string ts = std::to_string(now);
  std::string good = SignWebhook(k, "m", now, "body");
  std::string other = SignWebhook(GenerateWebhookSecret(), "m", now, "body");
  std::string list = "v2,AAAA " + other + " " + good;
  EXPECT_TRUE(VerifyWebhook(k, {"m", ts, list}, "body", now).ok());
  EXPECT_TRUE(VerifyWebhook(k, {"m", ts, good + " " + other}, "body", now).ok());
  EXPECT_FALSE(VerifyWebhook(k, {"m", ts, "v2,AAAA " + other}, "body", now).ok());
}

// ---- agreement with the npm reference library ----

struct NodeRun {
  int exit_code;
  std::string out;
};

NodeRun Node(std::initializer_list<std::string> args) {
  std::string cmd =
      std::string("'") + TOANI_NODE + "' '" + TOANI_PEERS_DIR + "/standard_webhooks_cli.js'";
  for (const std::string& a : args) {
    for (char c : a) TOANI_CHECK(c != '\'');  // each argument is quoted with '...'
    cmd += " '" + a + "'";
  }
  cmd += " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  TOANI_CHECK(p != nullptr);
  std::string out;
  std::array<char, 512> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

TEST(StandardWebhooksNpm, SameSignaturesAsTheReferenceLibrary) {
  SecretBytes k = GenerateWebhookSecret();
  std::string secret = FormatWebhookSecret(k);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const std::string bodies[] = {"{}", R"({"status":"done","value":"grüße ✓","n":[1,2,3]})", "",
                                std::string(5000, 'a') + "\n\t\"x\""};
  for (const std::string& body : bodies) {
    std::string id = "msg_" + std::to_string(body.size());
    NodeRun r = Node({"sign", secret, id, std::to_string(now), Base64Encode(AsBytes(body))});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, SignWebhook(k, id, now, body));
    // Ours verifies theirs.
    std::string ts = std::to_string(now);
    EXPECT_TRUE(VerifyWebhook(k, {id, ts, r.out}, body, now).ok());
  }
}

TEST(StandardWebhooksNpm, ReferenceLibraryVerifiesOursAndRefusesTampering) {
  SecretBytes k = GenerateWebhookSecret();
  std::string secret = FormatWebhookSecret(k);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::string body = R"({"execution":"ex_1","status":"succeeded"})";
  std::string b64 = Base64Encode(AsBytes(body));
  std::string sig = SignWebhook(k, "msg_ok", now, body);
  NodeRun ok = Node({"verify", secret, "msg_ok", std::to_string(now), sig, b64});
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(ok.out, "ok");
  // Several signatures, one good: the library accepts as we do.
  std::string list = SignWebhook(GenerateWebhookSecret(), "msg_ok", now, body) + " " + sig;
  EXPECT_EQ(Node({"verify", secret, "msg_ok", std::to_string(now), list, b64}).exit_code, 0);
  NodeRun tampered = Node({"verify", secret, "msg_other", std::to_string(now), sig, b64});
  EXPECT_EQ(tampered.exit_code, 1);
  EXPECT_EQ(tampered.out, "No matching signature found");
  std::string old_sig = SignWebhook(k, "msg_ok", now - 600, body);
  NodeRun stale = Node({"verify", secret, "msg_ok", std::to_string(now - 600), old_sig, b64});
  EXPECT_EQ(stale.exit_code, 1);
  EXPECT_EQ(stale.out, "Message timestamp too old");
  // And we refuse the same stale message.
  std::string old_ts = std::to_string(now - 600);
  EXPECT_FALSE(VerifyWebhook(k, {"msg_ok", old_ts, old_sig}, body, now).ok());
}

}  // namespace
}  // namespace toani
