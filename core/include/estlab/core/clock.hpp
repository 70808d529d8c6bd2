// Time is injected: the CA, IDM and fleet take a Clock so scenarios can move time.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

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

std::shared_ptr<Clock> system_clock();

// Seconds since the Unix epoch, the form the store and reports use.
inline long long to_unix(TimePoint t) {
  return std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count();
}
inline TimePoint from_unix(long long s) { return TimePoint(Seconds(s)); }

}  // namespace estlab
