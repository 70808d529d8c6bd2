// Errors as values at protocol boundaries: Result<T> holds either a T or an Error that says what is
// wrong and where. Exceptions are kept for startup and file loading (see ConfigError).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace estlab {

enum class ErrorCode {
  invalid_input,    // malformed bytes: DER, PEM, base64, properties, YAML
  verify_failed,    // a signature, chain or proof did not verify
  policy_refused,   // well-formed but not allowed
  not_found,
  io,               // files, sockets, the SQLite store
  limit_exceeded,   // a configured size or count was passed
  timeout,
  unsupported,
  internal,
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;

  // Prefixes context, e.g. Error{..., "bad length"}.within("CSR") -> "CSR: bad length".
  Error within(const std::string& context) const& { return {code, context + ": " + message}; }
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { check(); return std::get<0>(state_); }
  const T& value() const& { check(); return std::get<0>(state_); }
  T&& value() && { check(); return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(state_); }

 private:
  void check() const {
    if (!ok()) throw std::logic_error("Result::value() on an error: " + std::get<1>(state_).message);
  }
  std::variant<T, Error> state_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool failed_ = false;
};

// Thrown only while starting up or loading files (configuration, fixtures, scenario files).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Unwraps a Result where failure means bad configuration (startup paths only).
template <typename T>
T value_or_throw(Result<T> result, const std::string& context) {
  if (!result.ok()) throw ConfigError(context + ": " + result.error().message);
  return std::move(result).value();
}

}  // namespace estlab
