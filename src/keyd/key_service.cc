#include "keyd/key_service.h"

#include <sodium.h>

#include "common/encoding.h"
#include "keyd/protocol.h"
#include "keyd/secure_memory.h"

namespace toani::keyd {

using nlohmann::json;

StatusOr<std::string> ReqStr(const json& j, const char* key, size_t max_len) {
  if (!j.contains(key) || !j[key].is_string() || j[key].get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(std::string("missing string field '") + key + "'");
  }
  if (j[key].get_ref<const std::string&>().size() > max_len) {
    return Status::InvalidArgument(std::string("field '") + key + "' is too long");
  }
  return j[key].get<std::string>();
}

StatusOr<int64_t> ReqInt(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer()) {
    return Status::InvalidArgument(std::string("missing integer field '") + key + "'");
  }
  return j[key].get<int64_t>();
}

// The dispatch table. To add an op: a member function and one line here.
const KeyService::OpEntry KeyService::kOps[] = {
    {"status", &KeyService::StatusOp, false},
    {"attestation.evidence", &KeyService::AttestOp, false},
    {"operator.init", &KeyService::InitOp, false},
    {"operator.unseal", &KeyService::UnsealOp, false},
    {"operator.rekey", &KeyService::RekeyOp, false},
    {"tenant.rotate", &KeyService::RotateOp, true},
    {"credential.import", &KeyService::ImportCredential, true},
    {"credential.rewrap", &KeyService::RewrapCredential, true},
    {"token.mint", &KeyService::MintToken, true},
    {"token.verify", &KeyService::VerifyTokenOp, true},
    {"credential.release", &KeyService::ReleaseCredential, true},
    {"webhook.verify", &KeyService::VerifyWebhookOp, true},
    {"webhook.sign_approval", &KeyService::SignApprovalWebhookOp, true},
    {"audit.public_key", &KeyService::AuditOp, true},
    {"audit.sign_checkpoint", &KeyService::AuditOp, true},
};

KeyService::KeyService(KeydOptions opts, RootCustody root)
    : opts_(std::move(opts)),
      root_(std::move(root)),
      attester_(MakeSimulatedAttester(opts_.measurement)),
      intake_sk_(crypto_box_SECRETKEYBYTES) {
  uint8_t pk[crypto_box_PUBLICKEYBYTES];
  crypto_box_keypair(pk, intake_sk_.UnsafeMutableData());
  intake_pk_b64_ = Base64UrlEncode(std::span<const uint8_t>(pk, sizeof pk));
}

StatusOr<std::unique_ptr<KeyService>> KeyService::Open(KeydOptions opts) {
  if (sodium_init() < 0) return Status::Internal("keyd: libsodium failed to initialise");
  if (opts.state_dir.empty()) return Status::InvalidArgument("keyd: state_dir is required");
  auto root =
      opts.dev ? RootCustody::OpenDev(opts.state_dir) : RootCustody::OpenShamir(opts.state_dir);
  if (!root.ok()) return root.status();
  std::unique_ptr<KeyService> svc(new KeyService(std::move(opts), std::move(root).value()));
  if (!svc->root_.sealed()) TOANI_RETURN_IF_ERROR(svc->AfterUnseal());
  return svc;
}

StatusOr<std::string> KeyService::K4Lid(const SecretBytes& key) { return keyd::K4Lid(key); }

Status KeyService::AfterUnseal() {
  TOANI_ASSIGN_OR_RETURN(Keyring k, Keyring::Load(opts_.state_dir + "/keyring.json", root_.root()));
  keyring_.emplace(std::move(k));
  audit_signer_ = std::make_unique<AuditSigner>(
      root_.root(), [this](const std::string& tenant) { return CurrentL1(&*keyring_, tenant); });
  return Status::Ok();
}

json KeyService::Handle(const json& request) {
  // Every path below treats `request` as hostile: type-checked accessors only, and a
  // last-resort catch so a library throwing on odd input is an error reply, not a crash.
  try {
    std::string op;
    if (request.is_object() && request.contains("op") && request["op"].is_string())
      op = request["op"];
    std::lock_guard<std::mutex> lock(mu_);
    for (const OpEntry& e : kOps) {
      if (op != e.name) continue;
      if (e.needs_root && (root_.sealed() || !keyring_)) {
        return ErrorReply(
            Status::Unavailable("keyd is sealed: unseal it with `toani operator unseal`"));
      }
      StatusOr<json> r = (this->*e.fn)(request);
      if (!r.ok()) return ErrorReply(r.status());
      json out = std::move(r).value();
      out["ok"] = true;
      return out;
    }
    return ErrorReply(Status::InvalidArgument("keyd: unknown op '" + op.substr(0, 64) + "'"));
  } catch (const std::exception&) {
    return ErrorReply(Status::InvalidArgument("keyd: malformed request"));
  }
}

std::string KeyService::HandleBinary(std::string_view frame) {
  try {
    std::lock_guard<std::mutex> lock(mu_);
    if (!IsBinaryFrame(frame)) {
      return ErrorReply(Status::InvalidArgument("keyd: unknown binary frame type")).dump();
    }
    if (root_.sealed() || !keyring_ || !audit_signer_) {
      return ErrorReply(
                 Status::Unavailable("keyd is sealed: unseal it with `toani operator unseal`"))
          .dump();
    }
    if (static_cast<uint8_t>(frame[0]) == kMintRequest) {
      StatusOr<MintRequest> req = DecodeMintRequest(frame);
      StatusOr<MintedToken> t = req.ok() ? Mint(*req) : StatusOr<MintedToken>(req.status());
      if (!t.ok()) return ErrorReply(t.status()).dump();
      return EncodeMintReply(*t);
    }
    StatusOr<std::string> r = audit_signer_->SignBatch(frame);
    if (!r.ok()) return ErrorReply(r.status()).dump();
    return std::move(r).value();
  } catch (const std::exception&) {
    return ErrorReply(Status::InvalidArgument("keyd: malformed request")).dump();
  }
}

StatusOr<json> KeyService::StatusOp(const json&) {
  UnsealProgress p = root_.Progress();
  return json{{"intake_public_key", intake_pk_b64_},
              {"measurement", opts_.measurement},
              {"simulated", true},
              {"attestation", "simulated"},
              {"mode", root_.dev() ? "dev" : "shamir"},
              {"initialized", root_.initialized()},
              {"sealed", p.sealed},
              {"progress", p.progress},
              {"threshold", p.threshold},
              {"shares", p.shares},
              {"secret_memory", SecretArenaKind()}};
}

StatusOr<json> KeyService::AttestOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string nonce_b64, ReqStr(req, "nonce", 128));
  auto nonce = Base64UrlDecodeStrict(nonce_b64);
  if (!nonce.ok()) return Status::InvalidArgument("nonce must be base64url");
  TOANI_ASSIGN_OR_RETURN(json ev, attester_->Evidence(json{{"intake", intake_pk_b64_}}, *nonce));
  return json{{"evidence", ev}};
}

StatusOr<SecretBytes> KeyService::OpenSealed(const std::string& b64, size_t max_plain) const {
  auto sealed = Base64UrlDecodeStrict(b64);
  if (!sealed.ok() || sealed->size() <= crypto_box_SEALBYTES ||
      sealed->size() > max_plain + crypto_box_SEALBYTES) {
    return Status::InvalidArgument("sealed: not a sealed box of an acceptable size");
  }
  SecretBytes plain(sealed->size() - crypto_box_SEALBYTES);
  uint8_t pk[crypto_box_PUBLICKEYBYTES];
  crypto_scalarmult_base(pk, intake_sk_.UnsafeBytes().data());
  if (crypto_box_seal_open(plain.UnsafeMutableData(), sealed->data(), sealed->size(), pk,
                           intake_sk_.UnsafeBytes().data()) != 0) {
    return Status::InvalidArgument(
        "sealed: cannot open (was it sealed to this keyd's current intake key? keyd makes a new "
        "one each start: fetch it again)");
  }
  return plain;
}

StatusOr<json> KeyService::SealShares(const std::vector<SecretBytes>& shares,
                                      const json& req) const {
  TOANI_ASSIGN_OR_RETURN(std::string rpk_b64, ReqStr(req, "recipient_public_key", 64));
  auto rpk = Base64UrlDecodeStrict(rpk_b64);
  if (!rpk.ok() || rpk->size() != crypto_box_PUBLICKEYBYTES) {
    return Status::InvalidArgument("recipient_public_key must be an X25519 public key");
  }
  json out = json::array();
  for (const auto& s : shares) {
    Bytes sealed(s.size() + crypto_box_SEALBYTES);
    crypto_box_seal(sealed.data(), s.UnsafeBytes().data(), s.size(), rpk->data());
    out.push_back(Base64UrlEncode(sealed));
  }
  return out;
}

StatusOr<json> KeyService::InitOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(int64_t n, ReqInt(req, "shares"));
  TOANI_ASSIGN_OR_RETURN(int64_t t, ReqInt(req, "threshold"));
  if (t < 1 || n < t || n > 255)
    return Status::InvalidArgument("need 1 <= threshold <= shares <= 255");
  TOANI_RETURN_IF_ERROR(SealShares({}, req).status());  // validate the recipient before making L0
  TOANI_ASSIGN_OR_RETURN(auto shares, root_.Init(static_cast<int>(n), static_cast<int>(t)));
  TOANI_ASSIGN_OR_RETURN(json sealed, SealShares(shares, req));
  return json{{"shares", sealed}, {"threshold", t}, {"sealed", true}};
}

StatusOr<json> KeyService::UnsealOp(const json& req) {
  if (req.contains("reset") && req["reset"] == true) {
    root_.ResetProgress();
  } else {
    TOANI_ASSIGN_OR_RETURN(std::string b64, ReqStr(req, "sealed_share", 512));
    TOANI_ASSIGN_OR_RETURN(SecretBytes share, OpenSealed(b64, 256));
    const bool was_sealed = root_.sealed();
    TOANI_RETURN_IF_ERROR(root_.Submit(share).status());
    if (was_sealed && !root_.sealed()) {
      Status st = AfterUnseal();
      if (!st.ok()) return st;
    }
  }
  UnsealProgress p = root_.Progress();
  return json{{"sealed", p.sealed}, {"progress", p.progress}, {"threshold", p.threshold}};
}

StatusOr<json> KeyService::RekeyOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(int64_t n, ReqInt(req, "shares"));
  TOANI_ASSIGN_OR_RETURN(int64_t t, ReqInt(req, "threshold"));
  if (!req.contains("sealed_shares") || !req["sealed_shares"].is_array() ||
      req["sealed_shares"].size() > 255) {
    return Status::InvalidArgument("sealed_shares must be an array of sealed shares");
  }
  TOANI_RETURN_IF_ERROR(SealShares({}, req).status());
  std::vector<SecretBytes> current;
  for (const auto& s : req["sealed_shares"]) {
    if (!s.is_string()) return Status::InvalidArgument("sealed_shares must hold strings");
    TOANI_ASSIGN_OR_RETURN(SecretBytes share, OpenSealed(s.get<std::string>(), 256));
    current.push_back(std::move(share));
  }
  TOANI_ASSIGN_OR_RETURN(auto shares,
                         root_.Rekey(current, static_cast<int>(n), static_cast<int>(t)));
  TOANI_ASSIGN_OR_RETURN(json sealed, SealShares(shares, req));
  return json{{"shares", sealed}, {"threshold", t}};
}

StatusOr<json> KeyService::RotateOp(const json& req) {
  TOANI_ASSIGN_OR_RETURN(std::string tenant, ReqStr(req, "tenant", 128));
  TOANI_ASSIGN_OR_RETURN(int version, keyring_->Rotate(tenant));
  return json{{"tenant", tenant}, {"key_version", version}};
}

}  // namespace toani::keyd
