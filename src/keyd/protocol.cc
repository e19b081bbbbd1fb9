#include "keyd/protocol.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/secret.h"

namespace toani::keyd {
namespace {

Status ReadAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::Unavailable("keyd: connection lost while reading");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

// Writes every buffer in `v[0..count)` (retrying short writes).
Status WriteAllV(int fd, iovec* v, int count) {
  while (count > 0) {
    ssize_t w = ::writev(fd, v, count);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::Unavailable("keyd: connection lost while writing");
    auto done = static_cast<size_t>(w);
    while (count > 0 && done >= v->iov_len) {
      done -= v->iov_len;
      ++v;
      --count;
    }
    if (count > 0) {
      v->iov_base = static_cast<char*>(v->iov_base) + done;
      v->iov_len -= done;
    }
  }
  return Status::Ok();
}

void PutLength(uint8_t hdr[4], size_t size) {
  const auto n = static_cast<uint32_t>(size);
  hdr[0] = static_cast<uint8_t>(n >> 24);
  hdr[1] = static_cast<uint8_t>(n >> 16);
  hdr[2] = static_cast<uint8_t>(n >> 8);
  hdr[3] = static_cast<uint8_t>(n);
}

}  // namespace

Status WriteRawFrame(int fd, std::string_view body) {
  if (body.empty() || body.size() > kMaxFrameBytes)
    return Status::InvalidArgument("keyd: frame too large");
  uint8_t hdr[4];
  PutLength(hdr, body.size());
  // Length and payload in one system call: the peer wakes once per frame, not twice.
  iovec iov[2] = {{hdr, 4}, {const_cast<char*>(body.data()), body.size()}};
  return WriteAllV(fd, iov, 2);
}

Status WriteRawFrames(int fd, const std::vector<std::string>& payloads) {
  constexpr size_t kPerCall = 256;  // 512 iovecs, under every system's IOV_MAX (1024)
  for (size_t first = 0; first < payloads.size(); first += kPerCall) {
    const size_t n = std::min(kPerCall, payloads.size() - first);
    std::vector<std::array<uint8_t, 4>> hdrs(n);
    std::vector<iovec> iov(2 * n);
    for (size_t i = 0; i < n; ++i) {
      const std::string& body = payloads[first + i];
      if (body.empty() || body.size() > kMaxFrameBytes)
        return Status::InvalidArgument("keyd: frame too large");
      PutLength(hdrs[i].data(), body.size());
      iov[2 * i] = {hdrs[i].data(), 4};
      iov[2 * i + 1] = {const_cast<char*>(body.data()), body.size()};
    }
    TOANI_RETURN_IF_ERROR(WriteAllV(fd, iov.data(), static_cast<int>(iov.size())));
  }
  return Status::Ok();
}

FrameReader::~FrameReader() { SecureWipe(buf_.data(), buf_.size()); }

bool FrameReader::HasFrame() const {
  const size_t have = end_ - pos_;
  if (have < 4) return false;
  auto n = DecodeFrameLength(reinterpret_cast<const uint8_t*>(buf_.data() + pos_));
  return !n.ok() || have - 4 >= *n;
}

StatusOr<std::string> FrameReader::Next() {
  for (;;) {
    const size_t have = end_ - pos_;
    size_t need = 4;
    if (have >= 4) {
      TOANI_ASSIGN_OR_RETURN(
          size_t n, DecodeFrameLength(reinterpret_cast<const uint8_t*>(buf_.data() + pos_)));
      if (have - 4 >= n) {
        std::string frame(buf_.data() + pos_ + 4, n);
        SecureWipe(buf_.data() + pos_, 4 + n);
        pos_ += 4 + n;
        if (pos_ == end_) pos_ = end_ = 0;
        return frame;
      }
      need = 4 + n;
    }
    // Move what is left to the front, make room for the whole frame, then read as much
    // as there is.
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, have);
      SecureWipe(buf_.data() + have, end_ - have);
      pos_ = 0;
      end_ = have;
    }
    constexpr size_t kChunk = 64 << 10;
    const size_t size = std::max(kChunk, need);
    if (buf_.size() < size) {
      // Growing copies the buffer: wipe the old copy (credential frames pass through).
      std::vector<char> bigger(size);
      std::memcpy(bigger.data(), buf_.data(), end_);
      SecureWipe(buf_.data(), buf_.size());
      buf_.swap(bigger);
    }
    ssize_t r;
    do {
      r = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return Status::Unavailable("keyd: connection lost while reading");
    end_ += static_cast<size_t>(r);
  }
}

Status WriteFrame(int fd, const nlohmann::json& msg) { return WriteRawFrame(fd, msg.dump()); }

StatusOr<std::string> ReadRawFrame(int fd) {
  uint8_t hdr[4];
  TOANI_RETURN_IF_ERROR(ReadAll(fd, hdr, 4));
  TOANI_ASSIGN_OR_RETURN(size_t n, DecodeFrameLength(hdr));
  std::string body(n, '\0');
  TOANI_RETURN_IF_ERROR(ReadAll(fd, reinterpret_cast<uint8_t*>(body.data()), n));
  return body;
}

StatusOr<size_t> DecodeFrameLength(const uint8_t header[4]) {
  uint32_t n = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
               (uint32_t{header[2]} << 8) | header[3];
  if (n == 0 || n > kMaxFrameBytes) return Status::PayloadTooLarge("keyd: bad frame length");
  return size_t{n};
}

StatusOr<nlohmann::json> DecodeFrameBody(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("keyd: frame is not a JSON object");
  }
  return j;
}

StatusOr<nlohmann::json> ReadFrame(int fd) {
  TOANI_ASSIGN_OR_RETURN(std::string body, ReadRawFrame(fd));
  auto j = DecodeFrameBody(body);
  SecureWipe(body.data(), body.size());
  return j;
}

nlohmann::json ErrorReply(const Status& s) {
  return {{"ok", false}, {"error", {{"code", StatusCodeName(s.code())}, {"message", s.message()}}}};
}

Status ReplyStatus(const nlohmann::json& reply) {
  if (reply.value("ok", false)) return Status::Ok();
  std::string code = "internal", msg = "keyd: malformed reply";
  if (reply.contains("error") && reply["error"].is_object()) {
    code = reply["error"].value("code", code);
    msg = reply["error"].value("message", msg);
  }
  static const std::pair<const char*, StatusCode> kCodes[] = {
      {"invalid-argument", StatusCode::kInvalidArgument},
      {"unauthenticated", StatusCode::kUnauthenticated},
      {"permission-denied", StatusCode::kPermissionDenied},
      {"not-found", StatusCode::kNotFound},
      {"already-exists", StatusCode::kAlreadyExists},
      {"failed-precondition", StatusCode::kFailedPrecondition},
      {"unavailable", StatusCode::kUnavailable}};
  for (const auto& [name, c] : kCodes) {
    if (code == name) {
      switch (c) {
        case StatusCode::kInvalidArgument:
          return Status::InvalidArgument(msg);
        case StatusCode::kUnauthenticated:
          return Status::Unauthenticated(msg);
        case StatusCode::kPermissionDenied:
          return Status::PermissionDenied(msg);
        case StatusCode::kNotFound:
          return Status::NotFound(msg);
        case StatusCode::kAlreadyExists:
          return Status::AlreadyExists(msg);
        case StatusCode::kFailedPrecondition:
          return Status::FailedPrecondition(msg);
        case StatusCode::kUnavailable:
          return Status::Unavailable(msg);
        default:
          break;
      }
    }
  }
  return Status::Internal(msg);
}

}  // namespace toani::keyd
