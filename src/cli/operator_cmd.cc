#include "cli/operator_cmd.h"

#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "common/encoding.h"
#include "common/secret.h"
#include "keyd/attestation.h"

namespace toani::cli {
namespace {

using nlohmann::json;

int Error(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 1;
}

int ReplyError(const StatusOr<ApiReply>& r) {
  return Error(r.ok() ? ProblemText(*r) : r.status().message());
}

bool DevServer(const std::string& data_dir) {
  std::ifstream f(data_dir + "/server.json");
  auto j = json::parse(f, nullptr, false);
  return !j.is_discarded() && j.is_object() && j.value("dev", false);
}

std::string SealB64(const Bytes& pk, std::string_view text) {
  Bytes out(text.size() + crypto_box_SEALBYTES);
  crypto_box_seal(out.data(), reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                  pk.data());
  return Base64UrlEncode(out);
}

// An X25519 key pair for keyd to seal new shares to; the secret never leaves here.
struct ShareRecipient {
  uint8_t pk[crypto_box_PUBLICKEYBYTES];
  SecretBytes sk{crypto_box_SECRETKEYBYTES};
  ShareRecipient() { crypto_box_keypair(pk, sk.UnsafeMutableData()); }
  std::string PublicB64() const { return Base64UrlEncode(std::span<const uint8_t>(pk, sizeof pk)); }
  StatusOr<SecretBytes> Open(const json& sealed_b64) const {
    auto c = sealed_b64.is_string() ? Base64UrlDecodeStrict(sealed_b64.get<std::string>())
                                    : StatusOr<Bytes>(Status::InvalidArgument("not a string"));
    if (!c.ok() || c->size() <= crypto_box_SEALBYTES)
      return Status::InvalidArgument("malformed share box");
    SecretBytes out(c->size() - crypto_box_SEALBYTES);
    if (crypto_box_seal_open(out.UnsafeMutableData(), c->data(), c->size(), pk,
                             sk.UnsafeBytes().data()) != 0) {
      return Status::InvalidArgument("a share box does not open");
    }
    return out;
  }
};

int PrintShares(const json& sealed, const ShareRecipient& r, int threshold) {
  if (!sealed.is_array() || sealed.empty()) return Error("the server returned no shares");
  std::printf(
      "Unseal shares (%zu; any %d unseal keyd). They are shown ONCE and stored nowhere:\n"
      "give each to a different operator.\n\n",
      sealed.size(), threshold);
  int i = 1;
  for (const auto& s : sealed) {
    auto share = r.Open(s);
    if (!share.ok()) return Error(share.status().message());
    std::printf("share %d: %.*s\n", i++, static_cast<int>(share->size()),
                reinterpret_cast<const char*>(share->UnsafeBytes().data()));
  }
  std::fflush(stdout);
  return 0;
}

std::vector<std::string> ReadLines() {
  std::vector<std::string> out;
  std::string line;
  while (std::getline(std::cin, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

int Init(const OperatorArgs& a, const ApiClient& client, const std::string& data_dir) {
  auto intake = VerifiedIntakeKey(client, a, data_dir);  // attest before trusting keyd with L0
  if (!intake.ok()) return Error(intake.status().message());
  ShareRecipient r;
  auto rep = client.Call(
      As::kAdmin, "POST", "/v1/sys/init",
      {{"shares", a.shares}, {"threshold", a.threshold}, {"recipient_public_key", r.PublicB64()}});
  if (!rep.ok() || rep->status != 200) return ReplyError(rep);
  int rc = PrintShares(rep->body.value("shares", json()), r, a.threshold);
  if (rc == 0) std::printf("\nkeyd is initialised and sealed: run `toani operator unseal`.\n");
  return rc;
}

int Unseal(const OperatorArgs& a, const ApiClient& client, const std::string& data_dir) {
  if (a.reset) {
    auto rep = client.Call(As::kAdmin, "POST", "/v1/sys/unseal", {{"reset", true}});
    if (!rep.ok() || rep->status != 200) return ReplyError(rep);
    std::printf("unseal progress reset\n");
    return 0;
  }
  auto intake = VerifiedIntakeKey(client, a, data_dir);
  if (!intake.ok()) return Error(intake.status().message());
  std::vector<std::string> shares;
  if (!a.share.empty()) {
    shares.push_back(a.share);
  } else {
    if (isatty(0)) std::fprintf(stderr, "unseal shares, one per line (Ctrl-D to end):\n");
    shares = ReadLines();
  }
  if (shares.empty()) return Error("no share given");
  for (auto& s : shares) {
    auto rep =
        client.Call(As::kAdmin, "POST", "/v1/sys/unseal", {{"sealed_share", SealB64(*intake, s)}});
    SecureWipe(s.data(), s.size());
    if (!rep.ok() || rep->status != 200) return ReplyError(rep);
    if (!rep->body.value("sealed", true)) {
      std::printf("unsealed\n");
      return 0;
    }
    std::printf("sealed: %d/%d shares\n", rep->body.value("progress", 0),
                rep->body.value("threshold", 0));
  }
  return 0;
}

int Rekey(const OperatorArgs& a, const ApiClient& client, const std::string& data_dir) {
  auto intake = VerifiedIntakeKey(client, a, data_dir);
  if (!intake.ok()) return Error(intake.status().message());
  if (isatty(0))
    std::fprintf(stderr, "current unseal shares (a quorum), one per line, Ctrl-D to end:\n");
  auto current = ReadLines();
  json sealed = json::array();
  for (auto& s : current) {
    sealed.push_back(SealB64(*intake, s));
    SecureWipe(s.data(), s.size());
  }
  ShareRecipient r;
  auto rep = client.Call(As::kAdmin, "POST", "/v1/sys/rekey",
                         {{"sealed_shares", sealed},
                          {"shares", a.shares},
                          {"threshold", a.threshold},
                          {"recipient_public_key", r.PublicB64()}});
  if (!rep.ok() || rep->status != 200) return ReplyError(rep);
  int rc = PrintShares(rep->body.value("shares", json()), r, a.threshold);
  if (rc == 0) std::printf("\nThe previous shares no longer unseal keyd.\n");
  return rc;
}

int Print(const StatusOr<ApiReply>& rep) {
  if (!rep.ok() || rep->status != 200) return ReplyError(rep);
  std::printf("%s\n", rep->body.dump(2).c_str());
  return 0;
}

}  // namespace

void AddOperatorCommands(CLI::App& app, CLI::App* credential_add, OperatorArgs* a) {
  auto* op = app.add_subcommand("operator", "key custody: init, unseal, rekey, status");
  op->require_subcommand(1);
  a->status = op->add_subcommand("status", "show whether keyd is sealed and the unseal progress");
  a->init = op->add_subcommand("init", "make the root key and print its unseal shares once");
  a->init->add_option("--shares", a->shares, "number of shares (N)")->check(CLI::Range(1, 255));
  a->init->add_option("--threshold", a->threshold, "shares needed to unseal (T)")
      ->check(CLI::Range(1, 255));
  a->unseal =
      op->add_subcommand("unseal", "submit unseal shares (argument, or one per line on stdin)");
  a->unseal->add_option("share", a->share, "one share (default: read stdin)");
  a->unseal->add_flag("--reset", a->reset, "forget the shares submitted so far");
  a->rekey = op->add_subcommand("rekey", "new shares from a quorum of the current ones (stdin)");
  a->rekey->add_option("--shares", a->shares, "number of new shares")->check(CLI::Range(1, 255));
  a->rekey->add_option("--threshold", a->threshold, "new threshold")->check(CLI::Range(1, 255));
  auto* tenant = app.add_subcommand("tenant", "tenant keys");
  tenant->require_subcommand(1);
  a->rotate = tenant->add_subcommand(
      "rotate-key", "make a new tenant key (L1) version; old credentials still open");
  for (CLI::App* c : {a->init, a->unseal, a->rekey, credential_add}) {
    c->add_flag("--allow-simulated", a->allow_simulated,
                "accept keyd's simulated attestation (default only against a --dev server)");
    c->add_flag("--refuse-simulated", a->refuse_simulated,
                "refuse simulated attestation even in --dev");
  }
}

StatusOr<Bytes> VerifiedIntakeKey(const ApiClient& client, const OperatorArgs& a,
                                  const std::string& data_dir) {
  uint8_t nonce[32];
  randombytes_buf(nonce, sizeof nonce);
  auto rep = client.Call(
      As::kAdmin, "GET",
      "/v1/attestation?nonce=" + Base64UrlEncode(std::span<const uint8_t>(nonce, sizeof nonce)));
  if (!rep.ok()) return rep.status();
  if (rep->status != 200) return Status::Unavailable("attestation: " + ProblemText(*rep));
  keyd::VerifyPolicy policy;
  policy.allow_simulated = !a.refuse_simulated && (a.allow_simulated || DevServer(data_dir));
  auto claims = keyd::MakeVerifier()->Verify(rep->body,
                                             std::span<const uint8_t>(nonce, sizeof nonce), policy);
  if (!claims.ok()) return claims.status();
  auto pk = Base64UrlDecodeStrict(claims->public_keys.value("intake", ""));
  if (!pk.ok() || pk->size() != crypto_box_PUBLICKEYBYTES) {
    return Status::InvalidArgument("attested intake key is malformed");
  }
  std::fprintf(stderr, "keyd attested: measurement %s… (%s)\n",
               claims->measurement.substr(0, 16).c_str(),
               claims->simulated ? "SIMULATED: no hardware TEE" : claims->backend.c_str());
  return pk;
}

int RunOperatorCommands(const OperatorArgs& a, const ApiClient& client,
                        const std::string& data_dir) {
  if (a.status != nullptr && *a.status)
    return Print(client.Call(As::kAdmin, "GET", "/v1/sys/status"));
  if (a.init != nullptr && *a.init) return Init(a, client, data_dir);
  if (a.unseal != nullptr && *a.unseal) return Unseal(a, client, data_dir);
  if (a.rekey != nullptr && *a.rekey) return Rekey(a, client, data_dir);
  if (a.rotate != nullptr && *a.rotate) {
    return Print(client.Call(As::kAdmin, "POST", "/v1/tenant/rotate-key", json::object()));
  }
  return -1;
}

}  // namespace toani::cli
