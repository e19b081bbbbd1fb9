// Framing for the server ⇄ toani-keyd socket (docs/formats.md §1):
// 4-byte big-endian length, then a JSON object of at most 1 MiB.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace toani::keyd {

inline constexpr size_t kMaxFrameBytes = 1 << 20;

// Blocking; retries on EINTR. Returns Unavailable when the peer is gone.
// ReadFrame: PayloadTooLarge for a length outside 1..kMaxFrameBytes (the stream cannot
// be resynchronised: close it); InvalidArgument for a complete frame that is not a
// JSON object (answer with an error and keep reading).
Status WriteFrame(int fd, const nlohmann::json& msg);
StatusOr<nlohmann::json> ReadFrame(int fd);

// The payload as bytes, either direction (a JSON object's text or a binary frame,
// docs/formats.md §1.1). ReadRawFrame: PayloadTooLarge for a bad length.
Status WriteRawFrame(int fd, std::string_view payload);
StatusOr<std::string> ReadRawFrame(int fd);
// True when a payload is a binary frame (its first byte is not part of JSON text).
inline bool IsBinaryFrame(std::string_view payload) {
  // 0x01 audit.sign_batch, 0x02 audit.sign_batch_next, 0x03 token.mint (formats.md
  // §1.1–§1.3).
  return !payload.empty() && static_cast<unsigned char>(payload[0]) >= 0x01 &&
         static_cast<unsigned char>(payload[0]) <= 0x03;
}

// The pure decoders ReadFrame uses (also the fuzz targets' entry points).
StatusOr<size_t> DecodeFrameLength(const uint8_t header[4]);
StatusOr<nlohmann::json> DecodeFrameBody(std::string_view body);

// Builds the error reply for a failed status and reads a reply back into a Status.
nlohmann::json ErrorReply(const Status& s);
Status ReplyStatus(const nlohmann::json& reply);

}  // namespace toani::keyd
