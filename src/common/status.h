// Errors as values. Every fallible call at a component boundary returns a Status or a
// Result<T>; exceptions never cross a component boundary. A Status carries a code (which
// gateway/api_error.h maps onto an HTTP status and a Lambda error type) and a message written for
// the user: it says what went wrong and what to do about it.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace nimbus {

enum class Code {
  kOk = 0,
  kInvalidArgument,    // the user sent something malformed (400)
  kNotFound,           // no such function, version, alias (404)
  kAlreadyExists,      // (409)
  kTooLarge,           // payload or package over a limit (413)
  kTooManyRequests,    // throttled (429)
  kUnavailable,        // transient; retry (503)
  kDeadlineExceeded,   // timed out (504)
  kFailedPrecondition, // state does not allow it (409/400)
  kResourceExhausted,  // the server ran out of something it needs, such as disk space (507)
  kIo,                 // filesystem or OS error (500)
  kInternal,           // a bug in nimbus (500)
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
  static Status TooManyRequests(std::string m) { return {Code::kTooManyRequests, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {Code::kFailedPrecondition, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status Io(std::string m) { return {Code::kIo, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Short stable name, e.g. "InvalidArgument".
const char* CodeName(Code code);

// Result<T>: either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define NIMBUS_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::nimbus::Status _st = (expr);            \
    if (!_st.ok()) return _st;                \
  } while (0)

}  // namespace nimbus
