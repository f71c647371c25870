// Errors as values. Codes use the gRPC numbering so that the ttRPC layer can put them on the wire
// unchanged (see ttrpc/status.h, the one place where a Code becomes a wire status).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace cocoon {

enum class Code : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
};

const char* CodeName(Code code);

class Error {
 public:
  Error() = default;
  Error(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  // An error from a failed system call: the message gets strerror(err) appended, and the code is
  // derived from errno (ENOENT -> kNotFound, EEXIST -> kAlreadyExists, ...).
  static Error FromErrno(int err, std::string what);

  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  int sys_errno() const { return errno_; }

  // Returns a copy whose message is "<context>: <message>".
  Error Wrap(const std::string& context) const;

 private:
  Code code_ = Code::kUnknown;
  std::string message_;
  int errno_ = 0;
};

// Result<T> holds a T or an Error. Result<void> holds nothing or an Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status OkStatus() { return Status(); }

}  // namespace cocoon

// Propagates the error of a Result-returning expression.
#define COCOON_RETURN_IF_ERROR(expr) \
  do {                               \
    auto cocoon_status_ = (expr);    \
    if (!cocoon_status_.ok()) {      \
      return cocoon_status_.error(); \
    }                                \
  } while (0)

#define COCOON_CONCAT_INNER_(a, b) a##b
#define COCOON_CONCAT_(a, b) COCOON_CONCAT_INNER_(a, b)

// `COCOON_ASSIGN_OR_RETURN(auto x, Foo());` declares x from Foo()'s value or returns its error.
#define COCOON_ASSIGN_OR_RETURN(lhs, expr) \
  COCOON_ASSIGN_OR_RETURN_IMPL_(COCOON_CONCAT_(cocoon_result_, __LINE__), lhs, expr)
#define COCOON_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) {                                    \
    return tmp.error();                               \
  }                                                   \
  lhs = std::move(tmp).value()
