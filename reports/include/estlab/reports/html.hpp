// One self-contained HTML file (inline CSS and JS, no external resource) for a person to read a
// run: the seed, the skip summary first, the counts of every level, a requirement x profile
// matrix, filters, and every scenario with its evidence.
//
// Stable hooks for browser tests:
//   span#seed[data-seed=N] ("seed N (replay with --seed N)"), p#skip-summary (skip_summary_text),
//     span#count-V for each of the eight verdicts V ("N V"), span#count-partially-skipped,
//     span#overall (PASSED/FAILED, run_passed);
//   table#matrix, one <tr class="requirement" data-requirement="ID"> per requirement ID (natural
//     order), one <td class="cell verdict-V" data-profile="P" data-verdict="V"> per profile, links
//     a.scenario-link to the scenarios, each but a pass followed by span.tag naming its verdict; a
//     cell's verdict is the worst of its scenarios (conformance::worse: error > fail > xpass >
//     warn > xfail > info > pass > skip), "verdict-none" when no scenario ran there;
//   input.filter-verdict[value=pass|info|warn|skip|xfail|xpass|fail|error] (checkboxes),
//     input#filter-text, span#filter-count ("N of M scenarios shown");
//   <section class="scenario verdict-V" id="scenario-ID" data-verdict="V" data-requirements="A B"
//     data-profile="P">, hidden with style.display='none' when it does not match the filters.
//     When one ID ran more than once the id gets "--PROFILE" (several profiles) and "--rep-N"
//     (repetitions) appended; characters outside [A-Za-z0-9._-] in an ID become '_';
//   li.check.verdict-V[data-verdict=V][data-level=L] per check of a step.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "estlab/conformance/result.hpp"
#include "estlab/core/result.hpp"

namespace estlab::reports {

std::string html_report(const conformance::RunResult& run);

Result<void> write_html(const conformance::RunResult& run, const std::filesystem::path& path);

// & < > " ' as character references, after printable().
std::string html_escape(std::string_view text);

}  // namespace estlab::reports
