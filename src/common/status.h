// Status and StatusOr: the error currency of toani. No exceptions cross module
// boundaries; third-party code that throws is caught at its call site and turned
// into a Status. A broken internal invariant is not a Status: use TOANI_CHECK.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace toani {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input from a caller (HTTP 400)
  kUnauthenticated,     // no or bad identity (401)
  kPermissionDenied,    // identity known, not allowed (403)
  kNotFound,            // 404
  kAlreadyExists,       // 409 (e.g. a token already consumed)
  kFailedPrecondition,  // state does not allow it (409)
  kPayloadTooLarge,     // 413
  kUnavailable,         // a dependency is down: fail closed (503)
  kInternal,            // 500
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status Unauthenticated(std::string m) {
    return {StatusCode::kUnauthenticated, std::move(m)};
  }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status PayloadTooLarge(std::string m) {
    return {StatusCode::kPayloadTooLarge, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(StatusCode c, std::string m) : code_(c), message_(std::move(m)) {}
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

const char* StatusCodeName(StatusCode c);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) std::abort();     // an OK status carries no value
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace toani

#define TOANI_CHECK(cond)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "TOANI_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

#define TOANI_RETURN_IF_ERROR(expr) \
  do {                              \
    ::toani::Status _st = (expr);   \
    if (!_st.ok()) return _st;      \
  } while (0)

#define TOANI_CONCAT_INNER(a, b) a##b
#define TOANI_CONCAT(a, b) TOANI_CONCAT_INNER(a, b)
#define TOANI_ASSIGN_OR_RETURN(lhs, expr) \
  TOANI_ASSIGN_OR_RETURN_IMPL(TOANI_CONCAT(_sor_, __LINE__), lhs, expr)
#define TOANI_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
