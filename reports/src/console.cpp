#include "estlab/reports/console.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iostream>
#include <set>
#include <vector>

#include "estlab/reports/text.hpp"

namespace estlab::reports {

using conformance::RunResult;
using conformance::ScenarioResult;
using conformance::Verdict;

namespace {

constexpr const char* kRed = "1;31";
constexpr const char* kGreen = "32";
constexpr const char* kYellow = "1;33";
constexpr const char* kMagenta = "1;35";
constexpr const char* kBold = "1";
constexpr const char* kDim = "2";

// One colour per level; the word (PASS, INFO, WARN, SKIP, XFAIL, XPASS, FAIL, ERROR) says it too,
// for NO_COLOR and for logs.
const char* verdict_colour(Verdict verdict) {
  switch (verdict) {
    case Verdict::pass: return kGreen;
    case Verdict::info: return "36";     // cyan
    case Verdict::warn: return kYellow;  // bold yellow
    case Verdict::skip: return "34";     // blue
    case Verdict::xfail: return "2;32";  // dim green: failed as the baseline says
    case Verdict::xpass: return "1;36";  // bold cyan: the baseline is stale
    case Verdict::fail: return kRed;
    case Verdict::error: return kMagenta;
  }
  return kBold;
}

// Display width of printable UTF-8: one column per code point (ids and names are ASCII in practice).
std::size_t columns(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string pad_right(std::string text, std::size_t width) {
  const std::size_t have = columns(text);
  if (have < width) text.append(width - have, ' ');
  return text;
}

std::string pad_left(std::string text, std::size_t width) {
  const std::size_t have = columns(text);
  if (have < width) text.insert(0, width - have, ' ');
  return text;
}

// The first `width` columns of printable UTF-8.
std::string first_columns(std::string_view text, std::size_t width) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (seen == width) return std::string(text.substr(0, i));
      ++seen;
    }
  }
  return std::string(text);
}

}  // namespace

ConsoleReporter::Options ConsoleReporter::detect(const std::ostream& out) {
  Options options;
  int fd = -1;
  if (&out == &std::cout) fd = STDOUT_FILENO;
  if (&out == &std::cerr || &out == &std::clog) fd = STDERR_FILENO;
  options.tty = fd >= 0 && ::isatty(fd) == 1;
  if (options.tty) {
    winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col >= 20) options.width = size.ws_col;
  }
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  options.color = options.tty && (no_color == nullptr || *no_color == '\0') &&
                  !(term != nullptr && std::strcmp(term, "dumb") == 0);
  return options;
}

ConsoleReporter::ConsoleReporter(std::ostream& out) : ConsoleReporter(out, detect(out)) {}

ConsoleReporter::ConsoleReporter(std::ostream& out, Options options) : out_(out), options_(options) {
  if (options_.width < 20) options_.width = 20;
}

std::string ConsoleReporter::paint(std::string_view text, const char* sgr) const {
  if (!options_.color) return std::string(text);
  return "\033[" + std::string(sgr) + "m" + std::string(text) + "\033[0m";
}

std::string ConsoleReporter::verdict_word(Verdict verdict) const {
  std::string word = to_string(verdict);
  std::transform(word.begin(), word.end(), word.begin(), [](char c) { return static_cast<char>(c - 'a' + 'A'); });
  return paint(pad_right(word, 5), verdict_colour(verdict));
}

void ConsoleReporter::clear_bar_locked() {
  if (!bar_shown_) return;
  out_ << "\r\033[K";
  bar_shown_ = false;
}

// "[########............] 12/40  2 failed  enroll-revoked-refused", never wider than the terminal
// (a wrapped line could not be redrawn with \r).
void ConsoleReporter::draw_bar_locked(std::string_view label) {
  const std::size_t bar = std::min<std::size_t>(30, options_.width / 3);
  const std::size_t filled = total_ == 0 ? 0 : std::min(bar, bar * done_ / total_);
  std::string plain_counts = " " + std::to_string(done_) + "/" + std::to_string(total_);
  std::string failed_text = failed_ == 0 ? "" : "  " + std::to_string(failed_) + " failed";
  std::string warned_text = warned_ == 0 ? "" : "  " + std::to_string(warned_) + " warned";
  const std::size_t used = bar + 2 + plain_counts.size() + failed_text.size() + warned_text.size() + 2;
  std::string name = printable(label);
  const std::size_t room = options_.width > used + 1 ? options_.width - used - 1 : 0;
  if (columns(name) > room) name = room > 3 ? first_columns(name, room - 3) + "..." : "";

  std::string line = "\r[" + paint(std::string(filled, '#'), failed_ == 0 ? kGreen : kRed) +
                     std::string(bar - filled, '.') + "]" + plain_counts;
  if (!failed_text.empty()) line += paint(failed_text, kRed);
  if (!warned_text.empty()) line += paint(warned_text, kYellow);
  line += "  " + paint(name, kDim) + "\033[K";
  out_ << line << std::flush;
  bar_shown_ = true;
}

void ConsoleReporter::scenario_started(std::string_view id, std::size_t total) {
  std::lock_guard lock(mutex_);
  total_ = std::max(total_, total);
  ++running_[std::string(id)];
  if (options_.tty) draw_bar_locked(id);
}

void ConsoleReporter::scenario_finished(const ScenarioResult& result, std::size_t done, std::size_t total) {
  std::lock_guard lock(mutex_);
  // Results may arrive out of order from parallel workers: the bar never goes backwards.
  done_ = std::max(done_, done);
  total_ = std::max(total_, total);
  if (auto it = running_.find(result.id); it != running_.end() && --it->second == 0) running_.erase(it);
  const bool failed = counts_as_failure(result.verdict, false);
  if (failed) ++failed_;
  if (result.verdict == Verdict::warn || result.verdict == Verdict::xpass) ++warned_;
  // Failures and warnings come with their evidence at once; an xfail is known, its evidence is in
  // the HTML, JSON and JUnit reports.
  const bool evidence = failed || result.verdict == Verdict::warn || result.verdict == Verdict::xpass;

  if (options_.tty) {
    if (evidence) {
      clear_bar_locked();
      print_evidence_locked(result);
    }
    draw_bar_locked(running_.empty() ? result.id : running_.begin()->first);
    return;
  }

  const std::string width = std::to_string(total_);
  std::string line = "[" + pad_left(std::to_string(done), width.size()) + "/" + width + "] " +
                     verdict_word(result.verdict) + " " + printable(result.id) + repetition_suffix(result);
  line += " (" + printable(result.profile);
  if (!result.transport.empty()) line += ", " + printable(result.transport);
  line += ", " + milliseconds_text(result.elapsed_ms) + ")";
  if (const std::size_t skipped = result.skipped_steps(); skipped > 0) {
    line += " [" + std::to_string(skipped) + " of " + std::to_string(result.steps.size()) + " steps skipped]";
  }
  // The evidence block repeats a failure's message; every other level says why on its line.
  if (!evidence && !result.message.empty()) line += ": " + printable(result.message);
  if (!evidence && !result.baseline_reason.empty()) line += " (baseline: " + printable(result.baseline_reason) + ")";
  out_ << line << "\n";
  if (result.verdict == Verdict::info) {
    // What was recorded, one line each, without the exchanges.
    for (const auto& step : result.steps) {
      for (const auto& check : step.checks) {
        if (check.verdict == Verdict::info) out_ << "    " << paint(check_text(check), verdict_colour(Verdict::info)) << "\n";
      }
    }
  }
  if (evidence) print_evidence_locked(result);
  out_ << std::flush;
}

namespace {
// The rows whose checks did not hold (a check without a row stands for the scenario's first).
std::vector<std::string> evidence_requirements(const ScenarioResult& result) {
  std::vector<std::string> rows;
  for (const auto& step : result.steps)
    for (const auto& check : step.checks) {
      if (check.verdict == Verdict::pass || check.verdict == Verdict::skip) continue;
      const std::string row = !check.requirement.empty() ? check.requirement : result.requirements.empty() ? "" : result.requirements.front();
      if (!row.empty() && std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
    }
  return rows;
}
}  // namespace

// The evidence a person needs to see why, at once: what the scenario is, then each step that
// failed or warned with its checks (verdict, row, level), request and response, cut at
// options_.evidence_lines lines each.
void ConsoleReporter::print_evidence_locked(const ScenarioResult& result) {
  std::string block = verdict_word(result.verdict) + " " + paint(printable(result.id), kBold) + repetition_suffix(result);
  block += "  [" + printable(result.profile);
  if (!result.transport.empty()) block += ", " + printable(result.transport);
  block += "]";
  if (!result.requirements.empty()) block += "  " + printable(join(result.requirements, ", "));
  block += "\n";
  // The catalog's words for the rows this run broke or warned on, so the reader needs no catalog.
  for (const auto& requirement : evidence_requirements(result))
    if (auto text = requirement_texts_.find(requirement); text != requirement_texts_.end())
      block += "  " + printable(requirement) + ": " + printable(text->second) + "\n";
  if (!result.title.empty()) block += "  " + printable(result.title) + "\n";
  if (!result.file.empty()) {
    block += "  at " + printable(result.file);
    if (result.line > 0) block += ":" + std::to_string(result.line);
    block += "\n";
  }
  if (!result.message.empty()) block += "  " + paint(printable(result.message), verdict_colour(result.verdict)) + "\n";
  if (!result.baseline_reason.empty()) {
    block += "  baseline: " + printable(result.baseline_reason);
    if (result.verdict == Verdict::xpass) block += " (listed as failing, but it passed: the baseline entry is stale)";
    block += "\n";
  }
  if (!result.unique.empty()) block += "  unique: " + printable(result.unique) + "\n";
  EvidenceLimits limits;
  limits.max_lines = options_.evidence_lines;
  limits.max_line_chars = options_.evidence_line_chars;
  limits.decoded = false;  // certificates as text are long; the HTML and JSON reports have them
  for (const auto* step : evidence_steps(result)) block += indent_lines(step_evidence(*step, limits), "  ");
  out_ << block << "\n";
}

void ConsoleReporter::summary(const RunResult& run) {
  std::lock_guard lock(mutex_);
  clear_bar_locked();

  // First what was not judged and why: a run that skipped half the catalog is not a pass.
  const auto skips = skip_summary(run);
  std::string out = paint(skip_summary_text(run), skips.runs == 0 ? kDim : verdict_colour(Verdict::skip)) + "\n";

  // "9 scenarios: 4 passed, 1 info, 1 warn, ..." with every level, then the overall result.
  static constexpr const char* kCountWords[] = {"passed", "info", "warn", "skipped", "xfail", "xpass", "failed", "errors"};
  std::vector<std::string> counts;
  for (std::size_t v = 0; v < all_verdicts().size(); ++v) {
    const Verdict verdict = all_verdicts()[v];
    const std::size_t n = run.count(verdict);
    std::string word = kCountWords[v];
    if (verdict == Verdict::error && n == 1) word = "error";
    std::string text = std::to_string(n) + " " + word;
    if (n != 0 && verdict != Verdict::pass) text = paint(text, verdict_colour(verdict));
    counts.push_back(text);
  }
  const bool passed = run_passed(run);
  out += std::to_string(run.scenarios.size()) + " scenarios: " + join(counts, ", ") + " in " + seconds_text(run.elapsed_ms) +
         " s  " + (passed ? paint("PASSED", "1;32") : paint("FAILED", kRed)) + "\n";
  out += seed_text(run);
  if (run.strict) out += ", --strict (warn and xpass count as failures)";
  if (!run.baseline.empty()) out += ", baseline " + printable(run.baseline);
  out += "\n";

  // The runs to look at, by level: "failed: a [p], b [p]".
  const auto list = [&](std::string_view heading, std::initializer_list<Verdict> verdicts) {
    std::set<std::string> seen;
    std::vector<std::string> names;
    for (const auto& scenario : run.scenarios) {
      if (std::find(verdicts.begin(), verdicts.end(), scenario.verdict) == verdicts.end()) continue;
      std::string name = printable(scenario.id) + " [" + printable(scenario.profile) + "]";
      if (seen.insert(name).second) names.push_back(name);
    }
    if (!names.empty()) out += std::string(heading) + ": " + join(names, ", ") + "\n";
  };
  list("failed", {Verdict::fail, Verdict::error});
  list("xpass (stale baseline entries)", {Verdict::xpass});
  list("warnings", {Verdict::warn});
  out += "\n";

  const auto profiles = run_profiles(run);
  // The columns: the levels that occur in the run (all eight would not fit a terminal), in
  // all_verdicts() order; "pass" and "fail" always.
  std::vector<Verdict> columns_shown;
  for (const Verdict verdict : all_verdicts()) {
    if (verdict == Verdict::pass || verdict == Verdict::fail || run.count(verdict) != 0) columns_shown.push_back(verdict);
  }
  const auto slot = [&](Verdict verdict) {
    return static_cast<std::size_t>(std::find(all_verdicts().begin(), all_verdicts().end(), verdict) - all_verdicts().begin());
  };
  // (spec, section) rows in natural order; per profile the counts of each verdict.
  using Counts = std::array<std::size_t, 8>;
  struct Row {
    std::string spec, section;
    std::map<std::string, Counts> counts;  // profile -> count per all_verdicts() slot
  };
  std::vector<Row> rows;
  std::map<std::string, Counts> totals;
  for (const auto& scenario : run.scenarios) {
    const std::string spec = spec_name(scenario);
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const Row& row) { return row.spec == spec && row.section == scenario.section; });
    if (it == rows.end()) it = rows.insert(rows.end(), Row{spec, scenario.section, {}});
    ++it->counts[scenario.profile][slot(scenario.verdict)];
    ++totals[scenario.profile][slot(scenario.verdict)];
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.spec != b.spec) return natural_less(a.spec, b.spec);
    return natural_less(a.section, b.section);
  });

  constexpr std::size_t kCell = 6;  // each count column
  std::size_t label_width = 14;
  std::vector<std::string> labels;
  for (const auto& row : rows) {
    labels.push_back(printable(row.section.empty() ? row.spec : row.spec + " " + row.section));
    label_width = std::max(label_width, columns(labels.back()));
  }
  // Each profile's group of count columns is as wide as its name when that is wider (up to 40).
  std::vector<std::string> names;
  std::vector<std::size_t> widths;
  for (const auto& profile : profiles) {
    names.push_back(first_columns(printable(profile), 40));
    widths.push_back(std::max(columns_shown.size() * kCell, columns(names.back())));
  }

  out += paint("Results by spec section and profile", kBold) + "\n";
  std::string line = pad_right("", label_width);
  for (std::size_t p = 0; p < profiles.size(); ++p) line += "  " + pad_left(names[p], widths[p]);
  out += line + "\n";
  line = pad_right("spec / section", label_width);
  for (std::size_t p = 0; p < profiles.size(); ++p) {
    std::string heads;
    for (const Verdict verdict : columns_shown) heads += pad_left(to_string(verdict), kCell);
    line += "  " + pad_left(heads, widths[p]);
  }
  out += line + "\n";
  const auto counts_text = [&](const Counts* counts, std::size_t width) {
    std::string text = "  " + std::string(width - columns_shown.size() * kCell, ' ');
    for (const Verdict verdict : columns_shown) {
      const std::size_t n = counts == nullptr ? 0 : (*counts)[slot(verdict)];
      std::string cell = pad_left(n == 0 ? "-" : std::to_string(n), kCell);
      if (n != 0 && verdict != Verdict::pass) cell = paint(cell, verdict_colour(verdict));
      text += cell;
    }
    return text;
  };
  for (std::size_t r = 0; r < rows.size(); ++r) {
    line = pad_right(labels[r], label_width);
    for (std::size_t p = 0; p < profiles.size(); ++p) {
      const auto it = rows[r].counts.find(profiles[p]);
      line += counts_text(it == rows[r].counts.end() ? nullptr : &it->second, widths[p]);
    }
    out += line + "\n";
  }
  line = pad_right("total", label_width);
  for (std::size_t p = 0; p < profiles.size(); ++p) {
    const auto it = totals.find(profiles[p]);
    line += counts_text(it == totals.end() ? nullptr : &it->second, widths[p]);
  }
  out += line + "\n\n";

  out += "target: " + printable(run.target.empty() ? "(unnamed)" : run.target);
  if (!run.estlab_version.empty()) out += ", estlab " + printable(run.estlab_version);
  if (!run.started_at.empty()) out += ", started " + printable(run.started_at);
  out += "\n";
  if (!run.readings.empty()) {
    out += "readings:\n";
    for (const auto& [name, value] : run.readings) out += "  " + printable(name) + ": " + printable(value) + "\n";
  }
  out_ << out << std::flush;
}

}  // namespace estlab::reports
