// Time is injected: the CA, IDM and fleet take a Clock so scenarios can move time.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

namespace estlab {

using TimePoint = std::chrono::system_clock::time_point;
using Seconds = std::chrono::seconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
};

// A clock that only moves when told to; thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : now_(start) {}
  TimePoint now() const override {
    std::lock_guard lock(mutex_);
    return now_;
  }
  void set(TimePoint t) {
    std::lock_guard lock(mutex_);
    now_ = t;
  }
  void advance(std::chrono::system_clock::duration d) {
    std::lock_guard lock(mutex_);
    now_ += d;
  }

 private:
  mutable std::mutex mutex_;
  TimePoint now_;
};

// Real time moved by an offset: the lab's virtual clock. Time keeps running, so timeouts and
// Retry-After still mean what they say, and `advance` jumps it (a year of certificate lifetime
// without waiting); `reset` comes back to real time. Thread-safe.
class OffsetClock final : public Clock {
 public:
  TimePoint now() const override {
    std::lock_guard lock(mutex_);
    return std::chrono::system_clock::now() + offset_;
  }
  void advance(std::chrono::system_clock::duration d) {
    std::lock_guard lock(mutex_);
    offset_ += d;
  }
  void reset() {
    std::lock_guard lock(mutex_);
    offset_ = {};
  }
  std::chrono::system_clock::duration offset() const {
    std::lock_guard lock(mutex_);
    return offset_;
  }

 private:
  mutable std::mutex mutex_;
  std::chrono::system_clock::duration offset_{};
};

std::shared_ptr<Clock> system_clock();

// "400d", "12h", "30m", "90s" (a whole number and one unit; "-1d" goes back) -> seconds; nullopt
// for anything else.
std::optional<Seconds> parse_duration(std::string_view text);

// Seconds since the Unix epoch, the form the store and reports use.
inline long long to_unix(TimePoint t) {
  return std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count();
}
inline TimePoint from_unix(long long s) { return TimePoint(Seconds(s)); }

}  // namespace estlab
