// Time helpers and the Clock seam (tests inject a clock that jumps past `exp`).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace toani {

using SysTime = std::chrono::system_clock::time_point;
using Clock = std::function<SysTime()>;
inline Clock SystemClock() {
  return [] { return std::chrono::system_clock::now(); };
}

// "2026-11-21T23:27:54Z" (whole seconds, UTC).
std::string FormatRfc3339(SysTime t);
// Accepts "YYYY-MM-DDTHH:MM:SS" + optional ".fraction" + "Z" or "+HH:MM"/"-HH:MM".
StatusOr<SysTime> ParseRfc3339(std::string_view s);
int64_t UnixSeconds(SysTime t);

}  // namespace toani
