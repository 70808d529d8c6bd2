#include "estlab/conformance/result.hpp"

#include <algorithm>
#include <array>

namespace estlab::conformance {

namespace {
constexpr std::array<std::pair<Verdict, const char*>, 8> kNames = {{{Verdict::pass, "pass"},
                                                                   {Verdict::info, "info"},
                                                                   {Verdict::warn, "warn"},
                                                                   {Verdict::skip, "skip"},
                                                                   {Verdict::xfail, "xfail"},
                                                                   {Verdict::xpass, "xpass"},
                                                                   {Verdict::fail, "fail"},
                                                                   {Verdict::error, "error"}}};
}  // namespace

const char* to_string(Verdict verdict) {
  for (const auto& [v, name] : kNames)
    if (v == verdict) return name;
  return "error";
}

std::optional<Verdict> parse_verdict(std::string_view text) {
  for (const auto& [v, name] : kNames)
    if (text == name) return v;
  return std::nullopt;
}

int severity(Verdict verdict) {
  switch (verdict) {
    case Verdict::skip: return 0;
    case Verdict::pass: return 1;
    case Verdict::info: return 2;
    case Verdict::xfail: return 3;
    case Verdict::warn: return 4;
    case Verdict::xpass: return 5;
    case Verdict::fail: return 6;
    case Verdict::error: return 7;
  }
  return 7;
}

Verdict worse(Verdict a, Verdict b) { return severity(a) >= severity(b) ? a : b; }

bool is_failure(Verdict verdict) { return verdict == Verdict::fail || verdict == Verdict::error; }

std::size_t ScenarioResult::skipped_steps() const {
  if (verdict == Verdict::skip) return 0;
  return static_cast<std::size_t>(std::count_if(steps.begin(), steps.end(), [](const StepResult& s) { return s.verdict == Verdict::skip; }));
}

std::size_t RunResult::count(Verdict verdict) const {
  return static_cast<std::size_t>(
      std::count_if(scenarios.begin(), scenarios.end(), [&](const ScenarioResult& s) { return s.verdict == verdict; }));
}

std::size_t RunResult::partially_skipped() const {
  return static_cast<std::size_t>(
      std::count_if(scenarios.begin(), scenarios.end(), [](const ScenarioResult& s) { return s.skipped_steps() > 0; }));
}

bool RunResult::all_passed() const { return count(Verdict::fail) == 0 && count(Verdict::error) == 0; }

const char* to_string(CoverageState state) {
  switch (state) {
    case CoverageState::covered: return "covered";
    case CoverageState::not_covered: return "not covered";
    case CoverageState::untestable: return "untestable";
    case CoverageState::client_side: return "client-side";
  }
  return "not covered";
}

}  // namespace estlab::conformance
