// Framing for the server ⇄ toani-keyd socket (docs/formats.md §1):
// 4-byte big-endian length, then a JSON object of at most 1 MiB.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace toani::keyd {

inline constexpr size_t kMaxFrameBytes = 1 << 20;

// Blocking; retries on EINTR. Returns Unavailable when the peer is gone.
Status WriteFrame(int fd, const nlohmann::json& msg);
StatusOr<nlohmann::json> ReadFrame(int fd);

// Builds the error reply for a failed status and reads a reply back into a Status.
nlohmann::json ErrorReply(const Status& s);
Status ReplyStatus(const nlohmann::json& reply);

}  // namespace toani::keyd
