#include "estlab/core/result.hpp"

#include "estlab/core/clock.hpp"

namespace estlab {

const char* to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_input: return "invalid input";
    case ErrorCode::verify_failed: return "verification failed";
    case ErrorCode::policy_refused: return "refused by policy";
    case ErrorCode::not_found: return "not found";
    case ErrorCode::io: return "I/O error";
    case ErrorCode::limit_exceeded: return "limit exceeded";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::internal: return "internal error";
  }
  return "unknown error";
}

std::shared_ptr<Clock> system_clock() {
  static const auto clock = std::make_shared<SystemClock>();
  return clock;
}

}  // namespace estlab
