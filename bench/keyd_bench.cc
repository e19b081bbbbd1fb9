// Action Token and release costs (issue 3), each beside its baseline in the same run:
//  - PASETO v4.local encrypt+decrypt of a realistic claims payload, beside raw libsodium
//    XChaCha20 + keyed BLAKE2b (encrypt-then-MAC and verify-then-decrypt) of the same
//    payload — the target is within 2x of raw;
//  - keyd's full token.mint + token.verify ops (JSON, claims, strict checks);
//  - credential.release in-process and over the socket to a real toani-keyd.
// Results: docs/performance.md.
#include <benchmark/benchmark.h>
#include <sodium.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "common/encoding.h"
#include "crypto/paseto.h"
#include "keyd/client.h"
#include "keyd/key_service.h"
#include "keyd/secure_memory.h"

namespace {

using nlohmann::json;
using toani::keyd::KeyService;

const std::string& Claims() {
  static const std::string c =
      json{{"jti", "3q2-7wAAAAAAAAAAAAAAAA"},
           {"iss", "toani-keyd"},
           {"sub", "dev:demo-agent:-"},
           {"iat", "2026-11-22T00:00:00Z"},
           {"nbf", "2026-11-22T00:00:00Z"},
           {"exp", "2026-11-22T00:15:00Z"},
           {"policy_id", "bank"},
           {"policy_version", 3},
           {"action", "bank.get_balance"},
           {"params_hash", "sha256:" + std::string(64, 'a')},
           {"risk_tier", "low"},
           {"hitl", {{"confirmed", false}, {"approvers", json::array()}, {"proof", nullptr}}},
           {"cred", {"cred_0123456789abcdef"}},
           {"tee", {{"measurement", std::string(64, 'b')}, {"simulated", true}}}}
          .dump();
  return c;
}
const std::string kFooter = R"({"kid":"k4.lid.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})";
const std::string kImplicit = R"({"tee":")" + std::string(64, 'b') + R"(","tenant":"dev"})";

void BM_PasetoV4LocalMintVerify(benchmark::State& state) {
  toani::SecretBytes key = toani::SecretBytes::Random(32);
  for (auto _ : state) {
    auto t = toani::crypto::PasetoV4LocalEncrypt(key, Claims(), kFooter, kImplicit);
    auto m = toani::crypto::PasetoV4LocalDecrypt(key, *t, kImplicit);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["payload_bytes"] = static_cast<double>(Claims().size());
}
BENCHMARK(BM_PasetoV4LocalMintVerify);

// Baseline: the same two primitives on the same payload, with no PAE, no key
// derivation and no base64: nonce, XChaCha20 encrypt, keyed BLAKE2b tag; then
// recompute the tag, compare, decrypt.
void BM_RawXChaCha20Blake2b(benchmark::State& state) {
  uint8_t ek[32], ak[32], nonce[24], tag[32], tag2[32];
  randombytes_buf(ek, 32);
  randombytes_buf(ak, 32);
  const std::string& p = Claims();
  std::string c(p.size(), '\0'), out(p.size(), '\0');
  for (auto _ : state) {
    randombytes_buf(nonce, sizeof nonce);
    crypto_stream_xchacha20_xor(reinterpret_cast<uint8_t*>(c.data()),
                                reinterpret_cast<const uint8_t*>(p.data()), p.size(), nonce, ek);
    crypto_generichash(tag, 32, reinterpret_cast<const uint8_t*>(c.data()), c.size(), ak, 32);
    crypto_generichash(tag2, 32, reinterpret_cast<const uint8_t*>(c.data()), c.size(), ak, 32);
    if (crypto_verify_32(tag, tag2) != 0) state.SkipWithError("tag");
    crypto_stream_xchacha20_xor(reinterpret_cast<uint8_t*>(out.data()),
                                reinterpret_cast<const uint8_t*>(c.data()), c.size(), nonce, ek);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawXChaCha20Blake2b);

struct Svc {
  std::filesystem::path dir;
  std::unique_ptr<KeyService> svc;
  std::string intake, blob;
  Svc() {
    char tmpl[] = "/tmp/toani-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    toani::keyd::KeydOptions o;
    o.state_dir = dir.string();
    o.dev = true;
    o.measurement = std::string(64, 'b');
    svc = std::move(KeyService::Open(o)).value();
    intake = svc->Handle({{"op", "status"}})["intake_public_key"];
  }
  ~Svc() { std::filesystem::remove_all(dir); }
};

json MintReq() {
  return {{"op", "token.mint"},
          {"tenant", "dev"},
          {"agent", "demo-agent"},
          {"user", "-"},
          {"ttl_seconds", 900},
          {"claims",
           {{"policy_id", "bank"},
            {"policy_version", 3},
            {"action", "bank.get_balance"},
            {"params_hash", "sha256:" + std::string(64, 'a')},
            {"cred", {"cred_1"}}}}};
}

std::string Seal(const std::string& pk_b64, const std::string& secret) {
  auto pk = toani::Base64UrlDecodeStrict(pk_b64);
  toani::Bytes out(secret.size() + crypto_box_SEALBYTES);
  crypto_box_seal(out.data(), reinterpret_cast<const uint8_t*>(secret.data()), secret.size(),
                  pk->data());
  return toani::Base64UrlEncode(out);
}

void BM_KeydTokenMintVerifyOps(benchmark::State& state) {
  Svc s;
  const json mint = MintReq();
  for (auto _ : state) {
    json m = s.svc->Handle(mint);
    json v = s.svc->Handle({{"op", "token.verify"}, {"tenant", "dev"}, {"token", m["token"]}});
    if (!v.value("ok", false)) state.SkipWithError("verify failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KeydTokenMintVerifyOps);

json ReleaseReq(const std::string& token, const std::string& blob, const std::string& rpk) {
  return {{"op", "credential.release"}, {"tenant", "dev"}, {"token", token},
          {"credential_id", "cred_1"},  {"version", 1},    {"blob", blob},
          {"recipient_public_key", rpk}};
}

void BM_ReleaseInProcess(benchmark::State& state) {
  Svc s;
  json imp = s.svc->Handle({{"op", "credential.import"},
                            {"tenant", "dev"},
                            {"credential_id", "cred_1"},
                            {"version", 1},
                            {"sealed", Seal(s.intake, "sk_live_0123456789abcdef")}});
  uint8_t pk[32], sk[32];
  crypto_box_keypair(pk, sk);
  const std::string rpk = toani::Base64UrlEncode(std::span<const uint8_t>(pk, 32));
  for (auto _ : state) {
    state.PauseTiming();
    std::string token = s.svc->Handle(MintReq())["token"];
    state.ResumeTiming();
    json r = s.svc->Handle(ReleaseReq(token, imp["blob"], rpk));
    if (!r.value("ok", false)) state.SkipWithError("release failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReleaseInProcess)->Unit(benchmark::kMicrosecond);

void BM_ReleaseOverSocket(benchmark::State& state) {
  char tmpl[] = "/tmp/toani-bench-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  auto p = toani::keyd::KeydProcess::Spawn(std::string(TOANI_BIN_DIR) + "/toani-keyd", dir.string(),
                                           true);
  if (!p.ok()) {
    state.SkipWithError("keyd did not start");
    return;
  }
  auto st = (*p)->Call({{"op", "status"}});
  auto imp = (*p)->Call({{"op", "credential.import"},
                         {"tenant", "dev"},
                         {"credential_id", "cred_1"},
                         {"version", 1},
                         {"sealed", Seal((*st)["intake_public_key"], "sk_live_0123456789abcdef")}});
  uint8_t pk[32], sk[32];
  crypto_box_keypair(pk, sk);
  const std::string rpk = toani::Base64UrlEncode(std::span<const uint8_t>(pk, 32));
  for (auto _ : state) {
    state.PauseTiming();
    std::string token = (*(*p)->Call(MintReq()))["token"];
    state.ResumeTiming();
    auto r = (*p)->Call(ReleaseReq(token, (*imp)["blob"], rpk));
    if (!r.ok()) state.SkipWithError("release failed");
  }
  state.SetItemsProcessed(state.iterations());
  p->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ReleaseOverSocket)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  // As in toani-keyd: every secret of this process lives in the memfd_secret arena.
  if (!toani::keyd::InstallSecretArena(2 << 20).ok()) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
