// Audit entry records, version 2 (docs/audit-format.md §2): the bytes keyd signs and
// how anyone checks them. Pure and thread-safe; entries are untrusted input here.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "audit/note.h"
#include "common/status.h"

namespace toani::audit {

inline constexpr int kEntryVersion = 2;

// The signed body of an entry object: its RFC 8785 form without "sig".
StatusOr<std::string> EntrySigningBody(nlohmann::json entry);

// Checks that `entry` is canonical RFC 8785 JSON, has v == 2, an integer index equal to
// `index`, a 64-hex `prev`, and a "sig" that verifies under `key` over the signing body.
// Returns the parsed entry. InvalidArgument (malformed) or PermissionDenied (signature).
StatusOr<nlohmann::json> VerifyEntry(std::string_view entry, uint64_t index,
                                     const VerifierKey& key);

}  // namespace toani::audit
