// Framing for the server ⇄ toani-keyd socket (docs/formats.md §1):
// 4-byte big-endian length, then a JSON object of at most 1 MiB.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

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
// Reads frames from a stream socket through a buffer: one read(2) takes in every frame
// the peer has written so far, and the next ones come from the buffer without a system
// call. Bytes are wiped from the buffer as soon as their frame is taken.
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd) {}
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;
  // The next frame's payload; blocks only when no whole frame is buffered. Errors as
  // ReadRawFrame's.
  StatusOr<std::string> Next();
  // True when a whole frame (or a bad length, which Next reports) is buffered.
  bool HasFrame() const;

 private:
  const int fd_;
  std::vector<char> buf_;
  size_t pos_ = 0;  // start of the first frame not yet taken
  size_t end_ = 0;  // end of the bytes read
};

// Several payloads, each framed, in one writev(2) (the peer wakes once for them all).
Status WriteRawFrames(int fd, const std::vector<std::string>& payloads);

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
