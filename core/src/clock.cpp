#include "estlab/core/clock.hpp"

#include <charconv>

namespace estlab {

std::optional<Seconds> parse_duration(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  const char unit = text.back();
  long long multiplier = 0;
  switch (unit) {
    case 's': multiplier = 1; break;
    case 'm': multiplier = 60; break;
    case 'h': multiplier = 3600; break;
    case 'd': multiplier = 86400; break;
    default: return std::nullopt;
  }
  const std::string_view number = text.substr(0, text.size() - 1);
  long long value = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (error != std::errc() || end != number.data() + number.size()) return std::nullopt;
  // A hundred years either way is more than any certificate lifetime a scenario needs.
  if (value > 36500LL * 86400 / multiplier || value < -36500LL * 86400 / multiplier) return std::nullopt;
  return Seconds(value * multiplier);
}

}  // namespace estlab
