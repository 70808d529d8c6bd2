// The run as a stable JSON document: keys in a fixed order, two-space indentation, numbers with
// fixed decimals, so two runs diff line by line. Format name "estlab-conformance", version 1:
//   { format, format_version, estlab_version, target, started_at, elapsed_ms, all_passed,
//     profiles[], readings[{name, value}], counts{total, pass, fail, skip, error},
//     scenarios[{ id, title, file, line, requirements[], profile, transport, spec, section,
//                 repetition, verdict, message, elapsed_ms,
//                 steps[{ index, line, kind, summary, verdict, message, checks[], elapsed_ms,
//                         exchange: null | {transport, request, response, decoded, elapsed_ms} }] }] }
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
