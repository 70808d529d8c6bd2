// The console while a run goes on and after it: a progress bar on a terminal (plain lines when
// the output is a file or a pipe), each failure and warning at once with its evidence, and a
// summary that leads with what was skipped. Every level has its word and colour: PASS (green),
// INFO (cyan), WARN (bold yellow), SKIP (blue), XFAIL (dim green), XPASS (bold cyan), FAIL (bold
// red), ERROR (bold magenta). Thread-safe: scenarios run in parallel with -j.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include "estlab/conformance/result.hpp"

namespace estlab::reports {

class ConsoleReporter {
 public:
  struct Options {
    bool tty = false;          // \r-updated progress bar instead of one line per scenario
    bool color = false;        // ANSI colours
    std::size_t width = 80;    // terminal columns; the progress line never wraps
    std::size_t evidence_lines = 60;       // per request and response of a failing step
    std::size_t evidence_line_chars = 200;
  };

  // What out is: a TTY when it is std::cout/std::cerr/std::clog and that descriptor is a terminal
  // (width from the terminal); colour on a TTY unless NO_COLOR is set to a non-empty value
  // (no-color.org) or TERM is "dumb".
  static Options detect(const std::ostream& out);

  explicit ConsoleReporter(std::ostream& out);
  ConsoleReporter(std::ostream& out, Options options);
  ConsoleReporter(const ConsoleReporter&) = delete;
  ConsoleReporter& operator=(const ConsoleReporter&) = delete;

  // A scenario began (on a TTY the bar names it; nothing is printed otherwise).
  void scenario_started(std::string_view id, std::size_t total);

  // A scenario ended; done counts finished results including this one. On a TTY the bar is redrawn;
  // otherwise one line "[done/total] VERDICT id[ #N] (profile, transport, ms)[ [K of M steps
  // skipped]]: message (baseline: reason)"; an info result lists its info checks under it. A fail,
  // error, warn or xpass is followed at once by its evidence: the message, the baseline reason, and
  // each step that failed or warned with its checks (verdict, row, level), request and response.
  void scenario_finished(const conformance::ScenarioResult& result, std::size_t done, std::size_t total);

  // First line: skip_summary_text ("SKIPPED 7 scenario runs (3 partially) — the target lacks:
  // ..."); then the counts of every level and PASSED/FAILED, the seed ("seed N (replay with --seed
  // N)", --strict, the baseline), the failed, xpass and warned runs; then the table spec/section x
  // profile with a column per level that occurs (pass and fail always), the target and the readings.
  void summary(const conformance::RunResult& run);

  const Options& options() const { return options_; }

  // The catalog's words (ID -> "MUST: text"), printed with the evidence beside the rows that did
  // not hold. Set before the first scenario finishes.
  void set_requirement_texts(std::map<std::string, std::string> texts) { requirement_texts_ = std::move(texts); }

 private:
  void clear_bar_locked();
  std::map<std::string, std::string> requirement_texts_;
  void draw_bar_locked(std::string_view label);
  std::string paint(std::string_view text, const char* sgr) const;
  std::string verdict_word(conformance::Verdict verdict) const;
  void print_evidence_locked(const conformance::ScenarioResult& result);

  std::ostream& out_;
  Options options_;
  std::mutex mutex_;
  std::size_t done_ = 0;
  std::size_t total_ = 0;
  std::size_t failed_ = 0;   // fail or error so far
  std::size_t warned_ = 0;   // warn or xpass so far
  bool bar_shown_ = false;
  std::map<std::string, std::size_t, std::less<>> running_;  // started, not finished (parallel runs)
};

}  // namespace estlab::reports
