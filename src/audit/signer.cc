#include "audit/signer.h"

#include "common/encoding.h"

namespace toani::audit {
namespace {

using nlohmann::json;

class KeydAuditSigner final : public AuditSigner {
 public:
  KeydAuditSigner(keyd::KeyServiceClient* keyd, VerifierKey key)
      : keyd_(keyd), key_(std::move(key)) {}
  const VerifierKey& key() const override { return key_; }

  StatusOr<std::vector<std::string>> SignEntries(const Hash& prev,
                                                 const std::vector<json>& entries) override {
    json req = {{"op", "audit.sign_entries"},
                {"prev", HexEncode(std::span<const uint8_t>(prev.data(), prev.size()))},
                {"entries", entries}};
    TOANI_ASSIGN_OR_RETURN(json reply, keyd_->Call(req));
    if (!reply.contains("entries") || !reply["entries"].is_array() ||
        reply["entries"].size() != entries.size()) {
      return Status::Unavailable("keyd: bad audit.sign_entries reply");
    }
    std::vector<std::string> out;
    out.reserve(entries.size());
    for (const auto& e : reply["entries"]) {
      if (!e.is_string()) return Status::Unavailable("keyd: bad audit.sign_entries reply");
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  StatusOr<std::string> SignCheckpoint(const std::string& text) override {
    TOANI_ASSIGN_OR_RETURN(json reply,
                           keyd_->Call({{"op", "audit.sign_checkpoint"}, {"text", text}}));
    if (!reply.contains("signature_line") || !reply["signature_line"].is_string()) {
      return Status::Unavailable("keyd: bad audit.sign_checkpoint reply");
    }
    return text + "\n" + reply["signature_line"].get<std::string>();
  }

 private:
  keyd::KeyServiceClient* keyd_;
  VerifierKey key_;
};

}  // namespace

StatusOr<std::unique_ptr<AuditSigner>> NewKeydAuditSigner(keyd::KeyServiceClient* keyd) {
  TOANI_ASSIGN_OR_RETURN(json reply, keyd->Call({{"op", "audit.public_key"}}));
  if (!reply.contains("vkey") || !reply["vkey"].is_string())
    return Status::Unavailable("keyd: no audit key");
  TOANI_ASSIGN_OR_RETURN(VerifierKey key, ParseVerifierKey(reply["vkey"].get<std::string>()));
  return std::unique_ptr<AuditSigner>(new KeydAuditSigner(keyd, std::move(key)));
}

}  // namespace toani::audit
