// Structured JSON logging to stderr, one object per line. Callers pass only
// non-secret fields; as a second line of defence every string field passes
// through the credential-shape scrubber before it is written.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace toani {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Thread-safe. `fields` is merged into {"ts","level","component","event"}.
void Log(LogLevel level, std::string_view component, std::string_view event,
         const nlohmann::json& fields = nlohmann::json::object());

// Lines below `level` are dropped from now on (default: everything). Thread-safe.
void SetMinLogLevel(LogLevel level);

// Replaces substrings that look like credentials with "[REDACTED]": the value after
// "Bearer"/"Basic"/"Token", JWTs, and well-known API key prefixes (sk_live_, ghp_,
// AKIA, xoxb-, glpat-, sk-, whsec_, … — docs/connector-protocol.md §5.2). Linear time.
std::string ScrubCredentialShapes(std::string_view text);

}  // namespace toani
