#include "keyd/audit_signer.h"

#include "audit/merkle.h"
#include "audit/note.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/hash.h"
#include "crypto/kdf.h"
#include "keyd/key_service.h"
#include "keyd/keyring.h"

namespace toani::keyd {
namespace {

using nlohmann::json;
constexpr size_t kMaxBatch = 1024;

bool ValidDay(const std::string& d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (d[i] < '0' || d[i] > '9') return false;
  }
  return true;
}

// The canonical form of `e` plus "sig", built from `body` (the canonical form of `e`)
// instead of canonicalising again: an entry is signed at every append, so this halves the
// RFC 8785 work. With ASCII member names, JCS order is byte order, which is the order of
// nlohmann's object map; "sig" goes after the members that sort before it. Returns ""
// when a member name is not ASCII. Base64 needs no JSON escaping.
std::string WithSig(const json& e, const std::string& body, const std::string& sig_b64) {
  size_t before = 0;
  for (const auto& [k, v] : e.items()) {
    for (unsigned char c : k) {
      if (c >= 0x80) return "";
    }
    if (k < "sig") ++before;
  }
  const std::string member = "\"sig\":\"" + sig_b64 + "\"";
  if (before == 0) return "{" + member + (e.empty() ? "" : ",") + body.substr(1);
  // Find the end of the before-th top-level member: the before-th comma at depth 1.
  size_t members = 0;
  int depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_str) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '{' || c == '[')
      ++depth;
    else if (c == '}' || c == ']') {
      if (--depth == 0) return body.substr(0, i) + "," + member + body.substr(i);
    } else if (c == ',' && depth == 1 && ++members == before) {
      return body.substr(0, i) + "," + member + body.substr(i);
    }
  }
  return "";
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
  if (op == "audit.sign_entries") return SignEntries(req);
  if (op == "audit.sign_checkpoint") return SignCheckpoint(req);
  return Status::InvalidArgument("keyd: unknown op '" + op + "'");
}

// Builds, chains and signs a batch of entries (docs/audit-format.md §2): for each object
// in order, replaces "user" by its daily user reference, sets "prev" to the previous
// entry's leaf hash, signs the canonical body and adds "sig". Returns the stored bytes.
StatusOr<json> AuditSigner::SignEntries(const json& req) {
  if (!req.contains("entries") || !req["entries"].is_array() || req["entries"].size() > kMaxBatch ||
      !req.contains("prev") || !req["prev"].is_string()) {
    return Status::InvalidArgument(
        "audit.sign_entries: 'prev' and at most 1024 'entries' required");
  }
  auto prev_bytes = HexDecode(req["prev"].get<std::string>());
  if (!prev_bytes.ok() || prev_bytes->size() != 32)
    return Status::InvalidArgument("audit.sign_entries: bad prev");
  std::string prev = HexEncode(*prev_bytes);
  json out = json::array();
  uint64_t expect_index = 0;
  for (size_t i = 0; i < req["entries"].size(); ++i) {
    json e = req["entries"][i];
    if (!e.is_object() || e.value("v", 0) != 2 || !e.contains("index") ||
        !e["index"].is_number_unsigned() || !e.contains("time") || !e["time"].is_string() ||
        !e.contains("tenant") || !e["tenant"].is_string() || e.contains("sig") ||
        e.contains("prev") || e.contains("user_ref")) {
      return Status::InvalidArgument("audit.sign_entries: entry " + std::to_string(i) +
                                     " is not an unsigned v2 entry");
    }
    const uint64_t index = e["index"].get<uint64_t>();
    if (i > 0 && index != expect_index)
      return Status::InvalidArgument("audit.sign_entries: indices not consecutive");
    expect_index = index + 1;
    if (e.contains("user")) {
      if (!e["user"].is_string())
        return Status::InvalidArgument("audit.sign_entries: user must be a string");
      TOANI_ASSIGN_OR_RETURN(std::string ref, UserRef(e["tenant"].get<std::string>(),
                                                      e["time"].get<std::string>().substr(0, 10),
                                                      e["user"].get<std::string>()));
      e.erase("user");
      e["user_ref"] = ref;
    }
    e["prev"] = prev;
    TOANI_ASSIGN_OR_RETURN(std::string body, TryCanonicalizeJson(e));
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const uint8_t*>(body.data()), body.size(),
                         sk_.UnsafeBytes().data());
    std::string entry = WithSig(e, body, Base64Encode(std::span<const uint8_t>(sig, sizeof sig)));
    if (entry.empty()) {  // a non-ASCII top-level key: let JCS place "sig"
      e["sig"] = Base64Encode(std::span<const uint8_t>(sig, sizeof sig));
      TOANI_ASSIGN_OR_RETURN(entry, TryCanonicalizeJson(e));
    }
    audit::Hash leaf = audit::LeafHash(AsBytes(entry));
    prev = HexEncode(leaf);
    out.push_back(std::move(entry));
  }
  return json{{"entries", out}};
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
