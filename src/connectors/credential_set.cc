#include "connectors/credential_set.h"

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "connectors/scrub.h"

namespace toani {

CredentialSet::CredentialSet(SecretBytes whole) : whole_(std::move(whole)) {
  std::string_view v = whole_.UnsafeView();
  if (v.empty() || v.front() != '{') return;
  nlohmann::json j = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it->is_string()) continue;
    std::string& s = it->get_ref<std::string&>();
    fields_.emplace(it.key(), SecretBytes::Copy(std::string_view(s)));
    SecureWipe(s.data(), s.size());
  }
}

StatusOr<const SecretBytes*> CredentialSet::Field(const std::string& name) const {
  auto it = fields_.find(name);
  if (it == fields_.end() || it->second.empty()) {
    return Status::InvalidArgument("credential has no field '" + name + "'");
  }
  return &it->second;
}

StatusOr<const SecretBytes*> CredentialSet::Value(const std::string& field) const {
  if (!field.empty()) return Field(field);
  if (whole_.empty()) return Status::InvalidArgument("credential is empty");
  return &whole_;
}

void CredentialSet::AddDerived(std::string_view value) {
  if (value.empty()) return;
  derived_.push_back(SecretBytes::Copy(value));
  scrubbers_.clear();
}

std::string CredentialSet::Scrub(std::string_view text) const {
  if (scrubbers_.empty()) {
    // Same order as before: the whole plaintext, then its fields, then derived values.
    scrubbers_.emplace_back(whole_);
    for (const auto& [name, v] : fields_) {
      // Very short fields ("1", "yes") would redact innocent text; they are covered
      // by the whole plaintext's forms only.
      if (v.size() >= 4) scrubbers_.emplace_back(v);
    }
    for (const SecretBytes& d : derived_) scrubbers_.emplace_back(d);
  }
  std::string out(text);
  for (const SecretScrubber& s : scrubbers_) out = s.Scrub(out);
  return ScrubCredentialShapes(out);
}

}  // namespace toani
