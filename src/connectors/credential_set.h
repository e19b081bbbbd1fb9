// The opened credential of one execution, and the scrubbing that goes with it.
//
// A credential's plaintext is either one opaque value (an API key, a bearer token) or a
// JSON object of string fields (docs/connector-protocol.md §3.2), e.g.
// {"username":"alice","password":"…"} for form and browser logins, or
// {"client_id":"…","client_secret":"…","refresh_token":"…"} for OAuth. Every value is
// held in wiped memory. Scrub() removes the whole plaintext, each field, any value the
// connector learned during the run (an access token, a rotated refresh token) and
// credential-shaped strings from text that is about to leave the sandbox.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/secret.h"
#include "common/status.h"
#include "connectors/scrub.h"

namespace toani {

class CredentialSet {
 public:
  CredentialSet() = default;
  explicit CredentialSet(SecretBytes whole);
  CredentialSet(CredentialSet&&) = default;
  CredentialSet& operator=(CredentialSet&&) = default;

  const SecretBytes& whole() const { return whole_; }
  bool has_fields() const { return !fields_.empty(); }
  // The field's value; InvalidArgument naming the field (never its value) if the
  // credential has no such string field.
  StatusOr<const SecretBytes*> Field(const std::string& name) const;
  // The value to inject: `field` if given, else the whole plaintext.
  StatusOr<const SecretBytes*> Value(const std::string& field) const;

  // Adds a value that must also be scrubbed (e.g. an OAuth access token).
  void AddDerived(std::string_view value);

  // `text` with every secret (whole, fields, derived), in every encoding of
  // ScrubSecret, and every credential-shaped string replaced by "[REDACTED]".
  std::string Scrub(std::string_view text) const;

 private:
  SecretBytes whole_;
  std::map<std::string, SecretBytes> fields_;
  std::vector<SecretBytes> derived_;
  // Every secret's scrubbing forms, derived on the first Scrub after a change.
  mutable std::vector<SecretScrubber> scrubbers_;
};

}  // namespace toani
