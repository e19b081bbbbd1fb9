#include "audit/signer.h"

#include "audit/sign_frame.h"
#include "common/encoding.h"
#include "common/jcs.h"

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
    std::vector<SignItem> items;
    items.reserve(entries.size());
    for (const json& e : entries) {
      SignItem item;
      if (e.contains("user")) {
        if (!e["user"].is_string()) return Status::InvalidArgument("audit: user must be a string");
        item.user = e["user"].get<std::string>();
        json rest = e;
        rest.erase("user");
        TOANI_ASSIGN_OR_RETURN(item.body, TryCanonicalizeJson(rest));
      } else {
        TOANI_ASSIGN_OR_RETURN(item.body, TryCanonicalizeJson(e));
      }
      items.push_back(std::move(item));
    }
    return SignItems(prev, std::move(items));
  }

  // One binary audit.sign_batch frame per at most 1024 entries and 1 MiB (docs/formats.md
  // §1.1), chained: each call starts from the leaf hash of the previous call's last entry.
  StatusOr<std::vector<std::string>> SignItems(const Hash& prev,
                                               std::vector<SignItem> items) override {
    constexpr size_t kFrameBudget = (1 << 20) - 64;
    std::vector<std::string> out;
    out.reserve(items.size());
    Hash link = prev;
    size_t from = 0;
    while (from < items.size()) {
      size_t to = from, bytes = 35;
      while (to < items.size() && to - from < kSignBatchMaxItems) {
        const size_t size = SignItemEncodedSize(items[to]);
        if (to > from && bytes + size > kFrameBudget) break;
        bytes += size;
        ++to;
      }
      std::vector<SignItem> chunk(std::make_move_iterator(items.begin() + from),
                                  std::make_move_iterator(items.begin() + to));
      TOANI_ASSIGN_OR_RETURN(std::string reply,
                             keyd_->CallBinary(EncodeSignBatchRequest(link, chunk)));
      auto signed_entries = DecodeSignBatchReply(reply, chunk.size());
      if (!signed_entries.ok()) return Status::Unavailable("keyd: bad audit.sign_batch reply");
      link = LeafHash(AsBytes(signed_entries->back()));
      for (auto& e : *signed_entries) out.push_back(std::move(e));
      from = to;
    }
    return out;
  }

  std::unique_ptr<PendingBatch> SubmitItems(const std::optional<Hash>& prev,
                                            std::vector<SignItem> items) override {
    class Pending final : public PendingBatch {
     public:
      Pending(std::unique_ptr<keyd::KeyServiceClient::PendingCall> call, size_t n)
          : call_(std::move(call)), n_(n) {}
      StatusOr<std::vector<std::string>> Await() override {
        TOANI_ASSIGN_OR_RETURN(std::string reply, call_->Await());
        auto entries = DecodeSignBatchReply(reply, n_);
        if (!entries.ok()) return Status::Unavailable("keyd: bad audit.sign_batch reply");
        return entries;
      }

     private:
      std::unique_ptr<keyd::KeyServiceClient::PendingCall> call_;
      size_t n_;
    };
    const size_t n = items.size();
    return std::make_unique<Pending>(keyd_->SubmitBinary(EncodeSignBatchRequest(prev, items)), n);
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
