#include "common/log.h"

#include <limits.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "common/jcs.h"

namespace toani {
namespace {
std::mutex g_mu;

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void ScrubInPlace(nlohmann::json& j) {
  if (j.is_string()) {
    j = ScrubCredentialShapes(j.get<std::string>());
  } else if (j.is_structured()) {
    for (auto& v : j) ScrubInPlace(v);
  }
}
}  // namespace

// ScrubCredentialShapes lives in credential_shapes.cc.

namespace {
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kDebug)};
}  // namespace

void SetMinLogLevel(LogLevel level) { g_min_level.store(static_cast<int>(level)); }

void Log(LogLevel level, std::string_view component, std::string_view event,
         const nlohmann::json& fields) {
  if (static_cast<int>(level) < g_min_level.load(std::memory_order_relaxed)) return;
  // The line is written directly (the server logs every request): the four fixed
  // members, then the caller's fields in name order, every string scrubbed. A field that
  // reuses a fixed name replaces it, as the json tree did; such lines take the slow path.
  const bool reserved =
      fields.is_object() && (fields.contains("ts") || fields.contains("level") ||
                             fields.contains("component") || fields.contains("event"));
  std::string out;
  if (!reserved) {
    out.reserve(160);
    out += R"({"ts":")";
    out += NowRfc3339();
    out += R"(","level":")";
    out += LevelName(level);
    out += R"(","component":)";
    bool ok = AppendJsonString(component, &out).ok();
    out += R"(,"event":)";
    ok = ok && AppendJsonString(event, &out).ok();
    if (ok && fields.is_object()) {
      for (auto it = fields.begin(); ok && it != fields.end(); ++it) {
        out.push_back(',');
        ok = AppendJsonString(it.key(), &out).ok();
        out.push_back(':');
        if (it.value().is_string()) {
          ok = ok && AppendJsonString(
                         ScrubCredentialShapes(it.value().get_ref<const std::string&>()), &out)
                         .ok();
        } else {
          nlohmann::json v = it.value();
          ScrubInPlace(v);
          out += v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
      }
    }
    out += '}';
    if (!ok) out.clear();  // text that is not UTF-8: the tree below replaces it
  }
  if (out.empty()) {
    nlohmann::json line = {{"ts", NowRfc3339()},
                           {"level", LevelName(level)},
                           {"component", component},
                           {"event", event}};
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        nlohmann::json v = it.value();
        ScrubInPlace(v);
        line[it.key()] = std::move(v);
      }
    }
    out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  out.push_back('\n');
  // One write(2) per line, straight to fd 2 (stderr is unbuffered anyway). A write of up
  // to PIPE_BUF bytes is never interleaved with another on a pipe, nor on a file (the
  // kernel serialises writes to one file position), so the common line needs no lock
  // (the server logs every request from many threads); longer lines take it.
  std::unique_lock<std::mutex> lock(g_mu, std::defer_lock);
  if (out.size() > PIPE_BUF) lock.lock();
  const char* p = out.data();
  size_t n = out.size();
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;  // nowhere to log to: the line is lost, the caller is not stopped
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace toani
