#include "keyd/audit_signer.h"

#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/sign_frame.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "keyd/key_service.h"
#include "keyd/keyring.h"

namespace toani::keyd {
namespace {

using nlohmann::json;

bool ValidDay(const std::string& d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (d[i] < '0' || d[i] > '9') return false;
  }
  return true;
}

}  // namespace

AuditSigner::AuditSigner(const SecretBytes& root, TenantKeyFn tenant_key)
    : sk_(crypto_sign_SECRETKEYBYTES), tenant_key_(std::move(tenant_key)) {
  SecretBytes seed = crypto::HkdfSha256(
      root, AsBytes("toani.audit"), AsBytes("ed25519-audit-signing-key"), crypto_sign_SEEDBYTES);
  crypto_sign_seed_keypair(pk_.data(), sk_.UnsafeMutableData(), seed.UnsafeBytes().data());
  name_ = "toani.local/audit/" + crypto::Sha256Hex(ToString(pk_)).substr(0, 16);
  key_id_ = audit::Ed25519KeyId(name_, pk_);
  vkey_ = audit::FormatVerifierKey({name_, key_id_, pk_});
}

StatusOr<json> AuditSigner::Handle(const std::string& op, const json& req) {
  if (op == "audit.public_key") {
    uint8_t id[4] = {static_cast<uint8_t>(key_id_ >> 24), static_cast<uint8_t>(key_id_ >> 16),
                     static_cast<uint8_t>(key_id_ >> 8), static_cast<uint8_t>(key_id_)};
    return json{{"name", name_},
                {"key_id", HexEncode(id)},
                {"public_key", Base64Encode(pk_)},
                {"vkey", vkey_}};
  }
  if (op == "audit.sign_checkpoint") return SignCheckpoint(req);
  return Status::InvalidArgument("keyd: unknown op '" + op + "'");
}

// Builds, chains and signs a batch of entries (docs/audit-format.md §2, §6; the frame is
// docs/formats.md §1.1): for each canonical unsigned body in order, inserts "user_ref"
// (when a user was given) and "prev" = the previous entry's leaf hash, signs that
// canonical body and inserts "sig". Returns the reply frame with the stored bytes.
StatusOr<std::string> AuditSigner::SignBatch(std::string_view frame) {
  TOANI_ASSIGN_OR_RETURN(audit::SignBatchRequestView req, audit::DecodeSignBatchRequest(frame));
  if (!req.prev && !chain_set_) {
    return Status::FailedPrecondition(
        "audit.sign_batch_next: no batch signed yet to continue from");
  }
  audit::Hash prev = req.prev ? *req.prev : chain_leaf_;
  std::vector<std::string> out;
  out.reserve(req.items.size());
  uint64_t expect_index = 0;
  for (size_t i = 0; i < req.items.size(); ++i) {
    const auto& item = req.items[i];
    const auto bad = [i](const std::string& why) {
      return Status::InvalidArgument("audit.sign_batch: entry " + std::to_string(i) + ": " + why);
    };
    auto members = audit::ScanCanonicalObject(item.body);
    if (!members.ok()) return bad(members.status().message());
    const audit::TopMember *v = nullptr, *index = nullptr, *time = nullptr, *tenant = nullptr;
    for (const auto& m : *members) {
      if (m.name == "prev" || m.name == "sig" || m.name == "user" || m.name == "user_ref")
        return bad("must not carry '" + m.name + "' (keyd sets it)");
      if (m.name == "v") v = &m;
      if (m.name == "index") index = &m;
      if (m.name == "time") time = &m;
      if (m.name == "tenant") tenant = &m;
    }
    const auto value = [&](const audit::TopMember* m) {
      return item.body.substr(m->value_begin, m->end - m->value_begin);
    };
    if (v == nullptr || value(v) != "2") return bad("not a v2 entry");
    if (index == nullptr) return bad("no index");
    const std::string_view idx = value(index);
    uint64_t n = 0;
    if (idx.empty() || idx.size() > 16 || (idx.size() > 1 && idx[0] == '0'))
      return bad("index must be an integer 0..2^53-1");
    for (char c : idx) {
      if (c < '0' || c > '9') return bad("index must be an integer 0..2^53-1");
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (n >= (uint64_t{1} << 53)) return bad("index must be an integer 0..2^53-1");
    if (i > 0 && n != expect_index) return bad("indices not consecutive");
    if (i == 0 && !req.prev && n != chain_next_index_) {
      return Status::FailedPrecondition("audit.sign_batch_next: entry 0 has index " +
                                        std::to_string(n) + ", the chain continues at " +
                                        std::to_string(chain_next_index_));
    }
    expect_index = n + 1;
    std::string time_s, tenant_s;
    if (time == nullptr || tenant == nullptr || item.body[time->value_begin] != '"' ||
        item.body[tenant->value_begin] != '"' ||
        !audit::DecodeJsonStringAt(item.body, time->value_begin, &time_s) ||
        !audit::DecodeJsonStringAt(item.body, tenant->value_begin, &tenant_s)) {
      return bad("time and tenant must be strings");
    }
    std::vector<std::pair<std::string, std::string>> extra;
    extra.emplace_back("prev", "\"prev\":\"" + HexEncode(prev) + "\"");
    if (item.user) {
      TOANI_ASSIGN_OR_RETURN(std::string ref,
                             UserRef(tenant_s, time_s.substr(0, 10), std::string(*item.user)));
      extra.emplace_back("user_ref", "\"user_ref\":\"" + ref + "\"");
    }
    const std::string body = audit::InsertMembers(item.body, *members, extra);
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const uint8_t*>(body.data()), body.size(),
                         sk_.UnsafeBytes().data());
    extra.emplace_back(
        "sig", "\"sig\":\"" + Base64Encode(std::span<const uint8_t>(sig, sizeof sig)) + "\"");
    std::string entry = audit::InsertMembers(item.body, *members, std::move(extra));
    prev = audit::LeafHash(AsBytes(entry));
    out.push_back(std::move(entry));
  }
  // Only a batch signed whole moves the chain on.
  chain_set_ = true;
  chain_leaf_ = prev;
  chain_next_index_ = expect_index;
  return audit::EncodeSignBatchReply(out);
}

StatusOr<json> AuditSigner::SignCheckpoint(const json& req) {
  if (!req.contains("text") || !req["text"].is_string()) {
    return Status::InvalidArgument("audit.sign_checkpoint: 'text' required");
  }
  const std::string& text = req["text"].get_ref<const std::string&>();
  TOANI_ASSIGN_OR_RETURN(audit::Checkpoint c, audit::ParseCheckpointText(text));
  if (c.origin != name_ || audit::CheckpointText(c) != text) {
    return Status::InvalidArgument("audit.sign_checkpoint: not a checkpoint of this log");
  }
  std::string root = ToString(c.root);
  std::lock_guard<std::mutex> l(mu_);
  // A log must never sign two inconsistent checkpoints: refuse to go back, or to sign a
  // different root at the same size, within this keyd run.
  if (signed_any_ && (c.size < last_size_ || (c.size == last_size_ && root != last_root_))) {
    return Status::FailedPrecondition("audit.sign_checkpoint: would roll back or fork the log");
  }
  signed_any_ = true;
  last_size_ = c.size;
  last_root_ = root;
  std::vector<uint8_t> sig(4 + crypto_sign_BYTES);
  sig[0] = static_cast<uint8_t>(key_id_ >> 24);
  sig[1] = static_cast<uint8_t>(key_id_ >> 16);
  sig[2] = static_cast<uint8_t>(key_id_ >> 8);
  sig[3] = static_cast<uint8_t>(key_id_);
  crypto_sign_detached(sig.data() + 4, nullptr, reinterpret_cast<const uint8_t*>(text.data()),
                       text.size(), sk_.UnsafeBytes().data());
  return json{{"signature_line", "\xE2\x80\x94 " + name_ + " " + Base64Encode(sig) + "\n"}};
}

StatusOr<std::string> AuditSigner::UserRef(const std::string& tenant, const std::string& day,
                                           const std::string& user) {
  if (tenant.empty() || !ValidDay(day))
    return Status::InvalidArgument("audit: bad tenant or day for a user reference");
  std::string info = "audit-user-ref";
  info.push_back('\0');
  info += day;
  TOANI_ASSIGN_OR_RETURN(SecretBytes l1, tenant_key_(tenant));
  SecretBytes k_day = crypto::HkdfSha256(l1, {}, AsBytes(info), 32);
  return "hmac-sha256:" + HexEncode(crypto::HmacSha256(k_day, AsBytes(user)));
}

StatusOr<SecretBytes> CurrentL1(Keyring* keyring, const std::string& tenant) {
  TOANI_ASSIGN_OR_RETURN(const TenantKey* tk, keyring->Current(tenant));
  return SecretBytes::Copy(tk->l1.UnsafeBytes());
}

StatusOr<json> KeyService::AuditOp(const json& req) {
  if (!audit_signer_) return Status::Unavailable("keyd: the audit key needs an unsealed keyd");
  return audit_signer_->Handle(req.value("op", ""), req);
}

}  // namespace toani::keyd
