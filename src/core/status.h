// Status and Result<T>: expected failures as values, shaped like std::expected.
// A Status carries a domain code and a message naming the object and the operation,
// e.g. "spool commit 1.2.3: fsync: No space left on device".
#pragma once

#include <cassert>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace conduit {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input from outside: malformed DICOM, bad config, bad request
  kNotFound,            // the named object does not exist
  kAlreadyExists,       // a create of something that exists
  kFailedPrecondition,  // the system is not in a state where this is allowed
  kPermissionDenied,    // policy or allow-list refused it
  kUnavailable,         // a peer cannot be reached now; retry later
  kResourceExhausted,   // disk full, too many associations, queue full; retry later
  kDeadlineExceeded,    // a timeout; retry later
  kDataLoss,            // bytes could not be made or verified durable
  kInternal,            // a bug or an unexpected library failure
};

std::string_view StatusCodeName(StatusCode code);

// True for codes where trying again later may succeed (unavailable, exhausted, deadline).
bool IsRetryable(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<code name>: <message>"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status PermissionDenied(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status DeadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Status from errno after a failed system call: ENOSPC/EDQUOT become kResourceExhausted,
// EIO kDataLoss, ENOENT kNotFound, EACCES/EPERM kPermissionDenied, others kInternal.
Status ErrnoStatus(int err, std::string_view what);

// Result<T>: either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) {
      std::cerr << "Result constructed from OK status\n";
      std::abort();
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return Check(), std::get<T>(v_); }
  const T& value() const& { return Check(), std::get<T>(v_); }
  T&& value() && { return Check(), std::move(std::get<T>(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void Check() const {
    if (!ok()) {
      std::cerr << "Result::value() on error: " << std::get<Status>(v_).ToString() << "\n";
      std::abort();
    }
  }
  std::variant<T, Status> v_;
};

}  // namespace conduit

#define CONDUIT_CONCAT_INNER(a, b) a##b
#define CONDUIT_CONCAT(a, b) CONDUIT_CONCAT_INNER(a, b)

// Returns the status from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)       \
  do {                              \
    ::conduit::Status _st = (expr); \
    if (!_st.ok()) return _st;      \
  } while (0)

// ASSIGN_OR_RETURN(auto x, MakeX()); returns the error status if MakeX() failed.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(CONDUIT_CONCAT(_res_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
