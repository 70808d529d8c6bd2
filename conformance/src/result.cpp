#include "estlab/conformance/result.hpp"

#include <algorithm>

namespace estlab::conformance {

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::pass: return "pass";
    case Verdict::fail: return "fail";
    case Verdict::skip: return "skip";
    case Verdict::error: return "error";
  }
  return "error";
}

std::size_t RunResult::count(Verdict verdict) const {
  return static_cast<std::size_t>(
      std::count_if(scenarios.begin(), scenarios.end(), [&](const ScenarioResult& s) { return s.verdict == verdict; }));
}

bool RunResult::all_passed() const { return count(Verdict::fail) == 0 && count(Verdict::error) == 0; }

}  // namespace estlab::conformance
