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

// Replaces substrings that look like credentials (long high-entropy tokens,
// "Bearer xxx", "sk_live_..."-style keys) with "[REDACTED]".
std::string ScrubCredentialShapes(std::string_view text);

}  // namespace toani
