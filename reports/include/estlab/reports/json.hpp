// The run as a stable JSON document: keys in a fixed order, two-space indentation, numbers with
// fixed decimals, so two runs diff line by line. Format name "estlab-conformance", version 2
// (2: verdict levels, checks as objects, seed/strict/baseline, counts of every level):
//   { format, format_version, estlab_version, target, started_at, elapsed_ms,
//     seed ("1234": decimal in a string, a 64-bit seed does not survive a double), replay
//     ("--seed 1234"), strict, baseline ("" = none), all_passed (run_passed: under --strict warn
//     and xpass fail the run), profiles[], readings[{name, value}],
//     counts{total, pass, info, warn, skip, xfail, xpass, fail, error, partially_skipped},
//     skipped{runs, partially, lacks[{what, runs}], reasons[{reason, runs}]} (skip_summary),
//     scenarios[{ id, title, file, line, requirements[], profile, transport, spec, section,
//                 repetition, unique, verdict, message, baseline_reason, skipped_steps, elapsed_ms,
//                 steps[{ index, line, kind, summary, verdict, message,
//                         checks[{what, verdict, requirement, level}], elapsed_ms,
//                         exchange: null | {transport, request, response, decoded, elapsed_ms} }] }] }
// Verdicts are result.hpp's stable strings: pass, info, warn, skip, xfail, xpass, fail, error.
// Strings are the evidence as received, JSON-escaped; bytes that are not UTF-8 become U+FFFD.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "estlab/conformance/result.hpp"
#include "estlab/core/result.hpp"

namespace estlab::reports {

std::string json_report(const conformance::RunResult& run);

Result<void> write_json(const conformance::RunResult& run, const std::filesystem::path& path);

// text as a JSON string literal, quotes included.
std::string json_string(std::string_view text);

}  // namespace estlab::reports
