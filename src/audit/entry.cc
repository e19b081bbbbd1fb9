#include "audit/entry.h"

#include <sodium.h>

#include "common/encoding.h"
#include "common/jcs.h"

namespace toani::audit {

StatusOr<std::string> EntrySigningBody(nlohmann::json entry) {
  if (!entry.is_object()) return Status::InvalidArgument("entry: not an object");
  entry.erase("sig");
  return TryCanonicalizeJson(entry);
}

StatusOr<nlohmann::json> VerifyEntry(std::string_view entry, uint64_t index,
                                     const VerifierKey& key) {
  auto canonical = CanonicalizeJsonText(entry);
  if (!canonical.ok() || *canonical != entry)
    return Status::InvalidArgument("entry: not canonical RFC 8785 JSON");
  nlohmann::json j = nlohmann::json::parse(entry, nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("entry: not an object");
  if (!j.contains("v") || j["v"] != kEntryVersion)
    return Status::InvalidArgument("entry: not version 2");
  if (!j.contains("index") || !j["index"].is_number_unsigned() ||
      j["index"].get<uint64_t>() != index) {
    return Status::InvalidArgument("entry: index field is not " + std::to_string(index));
  }
  if (!j.contains("prev") || !j["prev"].is_string() || j["prev"].get<std::string>().size() != 64) {
    return Status::InvalidArgument("entry: bad prev");
  }
  if (!j.contains("sig") || !j["sig"].is_string()) return Status::InvalidArgument("entry: no sig");
  auto sig = Base64Decode(j["sig"].get<std::string>());
  if (!sig.ok() || sig->size() != crypto_sign_BYTES)
    return Status::InvalidArgument("entry: bad sig encoding");
  TOANI_ASSIGN_OR_RETURN(std::string body, EntrySigningBody(j));
  if (crypto_sign_verify_detached(sig->data(), reinterpret_cast<const unsigned char*>(body.data()),
                                  body.size(), key.public_key.data()) != 0) {
    return Status::PermissionDenied("entry " + std::to_string(index) +
                                    ": signature does not verify");
  }
  return j;
}

}  // namespace toani::audit
