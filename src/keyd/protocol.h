// Framing for the server ⇄ toani-keyd socket (docs/formats.md §1):
// 4-byte big-endian length, then a JSON object of at most 1 MiB.
#pragma once

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace toani::keyd {

inline constexpr size_t kMaxFrameBytes = 1 << 20;

// Blocking; retries on EINTR. Returns Unavailable when the peer is gone.
// ReadFrame: PayloadTooLarge for a length outside 1..kMaxFrameBytes (the stream cannot
// be resynchronised: close it); InvalidArgument for a complete frame that is not a
// JSON object (answer with an error and keep reading).
Status WriteFrame(int fd, const nlohmann::json& msg);
StatusOr<nlohmann::json> ReadFrame(int fd);

// The pure decoders ReadFrame uses (also the fuzz targets' entry points).
StatusOr<size_t> DecodeFrameLength(const uint8_t header[4]);
StatusOr<nlohmann::json> DecodeFrameBody(std::string_view body);

// Builds the error reply for a failed status and reads a reply back into a Status.
nlohmann::json ErrorReply(const Status& s);
Status ReplyStatus(const nlohmann::json& reply);

}  // namespace toani::keyd
