// Output scrubbing: removes a credential, and the encodings it commonly travels in,
// from text that is about to leave the sandbox (response bodies, headers, errors).
// The list of forms is specified in docs/connector-protocol.md §5.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/secret.h"

namespace toani {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// Returns `text` with every occurrence of `secret` and of its base64, base64url,
// percent-encoded, hex and JSON-escaped forms replaced by "[REDACTED]"; overlapping or
// adjacent matches collapse into one marker. An empty secret returns `text` unchanged.
// Thread-safe (no shared state). Derived forms are wiped before returning.
std::string ScrubSecret(std::string_view text, const SecretBytes& secret);

// ScrubSecret's forms of one secret, derived once and used for many texts (a response's
// body, every header name and value); wiped when it goes.
class SecretScrubber {
 public:
  explicit SecretScrubber(const SecretBytes& secret);
  ~SecretScrubber();
  SecretScrubber(SecretScrubber&&) noexcept;
  SecretScrubber& operator=(SecretScrubber&&) noexcept;
  std::string Scrub(std::string_view text) const;

 private:
  struct Forms;
  std::unique_ptr<Forms> forms_;
};

}  // namespace toani

namespace toani {

// Returns `text` with every invalid UTF-8 sequence (bad lead byte, truncated or
// overlong sequence, surrogate, > U+10FFFF) replaced by U+FFFD, one per bad byte.
// Valid input is returned unchanged. Used so a result body always serializes as JSON.
std::string MakeValidUtf8(std::string_view text);

}  // namespace toani
