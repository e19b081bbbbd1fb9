#include "keyd/protocol.h"

#include <sys/uio.h>
#include <unistd.h>

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

}  // namespace

Status WriteRawFrame(int fd, std::string_view body) {
  if (body.empty() || body.size() > kMaxFrameBytes)
    return Status::InvalidArgument("keyd: frame too large");
  uint32_t n = static_cast<uint32_t>(body.size());
  uint8_t hdr[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                    static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  // Length and payload in one system call: the peer wakes once per frame, not twice.
  iovec iov[2] = {{hdr, 4}, {const_cast<char*>(body.data()), body.size()}};
  iovec* v = iov;
  int count = 2;
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
