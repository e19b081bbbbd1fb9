// RFC 8785 JSON Canonicalization Scheme (JCS).
//
// Canonical form: no insignificant whitespace; object members sorted by the UTF-16 code
// units of their names; strings escaped as ECMAScript JSON.stringify does (only '"', '\\'
// and U+0000..U+001F; \b \t \n \f \r by name, the rest as lowercase \u00xx; everything
// else, including U+007F and non-ASCII, emitted as raw UTF-8); numbers as IEEE-754
// doubles printed by ECMAScript Number.prototype.toString (shortest round-trip digits).
// Integers that nlohmann parsed as int64/uint64 are converted to double first, exactly as
// a JavaScript implementation would, so integers beyond 2^53 lose precision by design.
//
// Error policy: NaN and +/-Infinity have no JSON form. CanonicalizeJsonText and
// TryCanonicalizeJson return InvalidArgument for them (and for invalid UTF-8 or binary
// values in a hand-built nlohmann::json); CanonicalizeJson treats them as a broken
// invariant and aborts via TOANI_CHECK — use it only on values you built yourself from
// finite numbers and valid UTF-8 (or that came from CanonicalizeJsonText's parser).
//
// All functions are pure and thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace toani {

// Parses `json_text` (strict RFC 8259: no comments, no trailing data, valid UTF-8,
// no lone surrogates) and returns its canonical form. Returns InvalidArgument for
// invalid JSON, duplicate member names in one object, or numbers that overflow a double.
StatusOr<std::string> CanonicalizeJsonText(std::string_view json_text);

// Canonical form of an already-built value. Returns InvalidArgument for NaN/Infinity,
// strings or keys that are not valid UTF-8, binary values, discarded values, or nesting
// deeper than 256 arrays/objects (the same limits apply to CanonicalizeJsonText).
StatusOr<std::string> TryCanonicalizeJson(const nlohmann::json& v);

// As TryCanonicalizeJson, but aborts (TOANI_CHECK) on the errors listed there.
std::string CanonicalizeJson(const nlohmann::json& v);

// Appends `s` as a JSON string in its RFC 8785 form (quotes included). InvalidArgument,
// and nothing appended, when `s` is not valid UTF-8.
Status AppendJsonString(std::string_view s, std::string* out);

// ECMAScript Number.prototype.toString for a finite double (exposed for tests).
// Precondition: std::isfinite(d).
std::string FormatJsonNumber(double d);

}  // namespace toani
