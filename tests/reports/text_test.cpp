#include "estlab/reports/text.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace estlab::reports::testing {
conformance::RunResult sample_run();
std::filesystem::path temp_dir(const std::string& name);

namespace {

using conformance::Verdict;

TEST(PrintableTest, KeepsTextNewlinesTabsAndUtf8) {
  EXPECT_EQ(printable("a\tb\nc \xC3\xBC \xE2\x9C\x93 \xF0\x9F\x98\x80"), "a\tb\nc \xC3\xBC \xE2\x9C\x93 \xF0\x9F\x98\x80");
}

TEST(PrintableTest, ShowsControlCharactersAndFoldsCrlf) {
  EXPECT_EQ(printable("a\r\nb\rc\x01\x1b[31m\x7F"), "a\nb\\x0Dc\\x01\\x1B[31m\\x7F");
  EXPECT_EQ(printable(std::string_view("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(printable("\xC2\x9B"), "\\x9B");          // C1 CSI: some terminals act on it
  EXPECT_EQ(printable("\xEF\xBF\xBE"), "\\u{FFFE}");  // not allowed in XML
}

TEST(PrintableTest, ReplacesBytesThatAreNotUtf8) {
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(printable("a\xFF" "b"), "a" + replacement + "b");
  EXPECT_EQ(printable("\xC0\xAF"), replacement + replacement);           // overlong '/'
  EXPECT_EQ(printable("\xED\xA0\x80"), replacement + replacement + replacement);  // a surrogate
  EXPECT_EQ(printable("\xE2\x9C"), replacement + replacement);           // cut short
  EXPECT_EQ(printable("\xF4\x90\x80\x80"), replacement + replacement + replacement + replacement);  // > U+10FFFF
  EXPECT_EQ(valid_utf8("ok\xFF\x01"), "ok" + replacement + "\x01");
}

TEST(ReadableMessageTest, BinaryBodiesBecomeAHexDump) {
  const std::string der("\x30\x82\x02\x21\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x00\x41", 18);
  const auto text = readable_message("HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n" + der);
  EXPECT_EQ(text,
            "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n"
            "(18 bytes, not text: hex dump)\n"
            "0000  30 82 02 21 06 09 2a 86  48 86 f7 0d 01 07 02 a0  |0..!..*.H.......|\n"
            "0010  00 41                                             |.A|\n");
  EXPECT_EQ(readable_message(der).rfind("(18 bytes, not text: hex dump)\n", 0), 0u);  // no header at all
  // Text stays text, even with a stray control character or non-ASCII.
  const std::string plain = "HTTP/1.1 403 Forbidden\n\nPG-ENR-3: revoked \xC3\xBC \x01 <b>";
  EXPECT_EQ(readable_message(plain), plain);
  EXPECT_EQ(readable_message("HTTP/1.1 204 No Content\r\n\r\n"), "HTTP/1.1 204 No Content\r\n\r\n");
  // Already made printable by its producer: shown as given, not dumped.
  const std::string escaped = "HTTP/1.1 200 OK\n\n0\xC2\x82\\x02!\\x06\t*\xC2\x86H\xC2\x86\xC3\xB7\\x01\\x07\\x02";
  EXPECT_EQ(readable_message(escaped), escaped);
}

TEST(TruncateLinesTest, CutsLinesAndSaysHowMany) {
  std::string text;
  for (int i = 1; i <= 100; ++i) text += "line " + std::to_string(i) + "\n";
  const auto cut = truncate_lines(text, 60, 0);
  EXPECT_NE(cut.find("line 60\n"), std::string::npos);
  EXPECT_EQ(cut.find("line 61\n"), std::string::npos);
  EXPECT_NE(cut.find("... 40 more lines"), std::string::npos);
  EXPECT_EQ(truncate_lines("a\nb", 0, 0), "a\nb");
  EXPECT_EQ(truncate_lines("a\nb", 1, 0), "a\n... 1 more line\n");
  EXPECT_EQ(truncate_lines(std::string(300, 'x'), 0, 200), std::string(200, 'x') + "... (+100 bytes)");
  // Never inside a UTF-8 sequence.
  EXPECT_EQ(truncate_lines("\xC3\xBC\xC3\xBC", 0, 3), "\xC3\xBC... (+2 bytes)");
}

TEST(IndentLinesTest, PrefixesEveryLine) {
  EXPECT_EQ(indent_lines("a\nb\n", "  "), "  a\n  b\n");
  EXPECT_EQ(indent_lines("a\n\nb", "> "), "> a\n> \n> b\n");
  EXPECT_EQ(indent_lines("", "  "), "");
}

TEST(NaturalLessTest, OrdersRequirementIdsAsPeopleRead) {
  std::vector<std::string> ids = {"7030-4.10-a", "PG-ENR-10", "7030-4.2.1-b", "7030-4.2-a", "PG-ENR-2",
                                  "7030-3.3.2-b", "9148-2-a", "7030-4.2.1-a", "PG-AUTH-1"};
  std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return natural_less(a, b); });
  const std::vector<std::string> expected = {"7030-3.3.2-b", "7030-4.2-a", "7030-4.2.1-a", "7030-4.2.1-b",
                                             "7030-4.10-a", "9148-2-a", "PG-AUTH-1", "PG-ENR-2", "PG-ENR-10"};
  EXPECT_EQ(ids, expected);
  EXPECT_FALSE(natural_less("a", "a"));
  EXPECT_TRUE(natural_less("a", "a1"));
  EXPECT_TRUE(natural_less("x99999999999999999999999", "x100000000000000000000000"));  // no overflow
  EXPECT_TRUE(natural_less("x1", "x01"));  // equal numbers: a strict, consistent tie-break
  EXPECT_FALSE(natural_less("x01", "x1"));
}

TEST(VerdictsTest, EveryLevelOnceInResultOrder) {
  const std::vector<Verdict> all(all_verdicts().begin(), all_verdicts().end());
  EXPECT_EQ(all, (std::vector<Verdict>{Verdict::pass, Verdict::info, Verdict::warn, Verdict::skip, Verdict::xfail,
                                       Verdict::xpass, Verdict::fail, Verdict::error}));
}

TEST(VerdictsTest, FailuresAndStrictness) {
  for (const Verdict v : all_verdicts()) {
    const bool failure = v == Verdict::fail || v == Verdict::error;
    EXPECT_EQ(counts_as_failure(v, false), failure) << to_string(v);
    EXPECT_EQ(counts_as_failure(v, true), failure || v == Verdict::warn || v == Verdict::xpass) << to_string(v);
  }
  conformance::RunResult run;
  run.scenarios.resize(3);
  run.scenarios[0].verdict = Verdict::warn;
  run.scenarios[1].verdict = Verdict::xfail;
  run.scenarios[2].verdict = Verdict::info;
  EXPECT_TRUE(run_passed(run));
  run.strict = true;
  EXPECT_FALSE(run_passed(run));  // --strict: a warning fails the run
  run.scenarios[0].verdict = Verdict::skip;
  EXPECT_TRUE(run_passed(run));
  run.scenarios[1].verdict = Verdict::xpass;
  EXPECT_FALSE(run_passed(run));
  run.strict = false;
  EXPECT_TRUE(run_passed(run));
  EXPECT_FALSE(run_passed(sample_run()));
}

TEST(CheckTextTest, VerdictWhatRowAndLevel) {
  EXPECT_EQ(check_text({"status 200 == 403", Verdict::fail, "PG-ENR-3", "MUST"}), "fail  status 200 == 403 (PG-ENR-3, MUST)");
  EXPECT_EQ(check_text({"Retry-After", Verdict::warn, "7030-4.2.3-b", "SHOULD"}), "warn  Retry-After (7030-4.2.3-b, SHOULD)");
  EXPECT_EQ(check_text({"offered", Verdict::info, "", "MAY"}), "info  offered (MAY)");
  EXPECT_EQ(check_text({"x", Verdict::xpass, "", ""}), "xpass x");
  EXPECT_EQ(check_text({"a\x1b[31m", Verdict::error, "", ""}), "error a\\x1B[31m");
}

TEST(RepetitionSuffixTest, SecondAndLaterRepetitions) {
  conformance::ScenarioResult s;
  EXPECT_EQ(repetition_suffix(s), "");
  s.repetition = 1;
  EXPECT_EQ(repetition_suffix(s), " #2");
}

TEST(SeedTextTest, SaysHowToReplay) {
  auto run = sample_run();
  EXPECT_EQ(seed_text(run), "seed 1234 (replay with --seed 1234)");
  run.seed = 18446744073709551615u;
  EXPECT_EQ(seed_text(run), "seed 18446744073709551615 (replay with --seed 18446744073709551615)");
}

TEST(SkipSummaryTest, CountsWhatTheTargetLacksAndOtherReasons) {
  const auto run = sample_run();
  const auto summary = skip_summary(run);
  EXPECT_EQ(summary.runs, 3u);
  EXPECT_EQ(summary.partially, 1u);
  using Counted = std::vector<std::pair<std::string, std::size_t>>;
  EXPECT_EQ(summary.lacks, (Counted{{"an identity for role 'device-revoked'", 1}, {"control 'revoke'", 1},
                                    {"feature 'serverkeygen'", 1}}));
  EXPECT_EQ(summary.reasons, (Counted{{"encrypted key delivery is not implemented (501)", 1}}));
  EXPECT_EQ(skip_summary_text(run),
            "SKIPPED 3 scenario runs (1 partially) \xE2\x80\x94 the target lacks: an identity for role 'device-revoked' (1), "
            "control 'revoke' (1), feature 'serverkeygen' (1); other reasons: encrypted key delivery is not "
            "implemented (501) (1)");

  // Most often lacking first; a step prefix is not part of the reason; each reason once per run.
  conformance::RunResult many;
  for (int i = 0; i < 3; ++i) {
    conformance::ScenarioResult s;
    s.verdict = Verdict::skip;
    s.message = i == 0 ? "the target lacks control 'approve'" : "the target lacks feature 'coaps', control 'approve'";
    many.scenarios.push_back(s);
  }
  conformance::ScenarioResult aborted;
  aborted.verdict = Verdict::skip;
  aborted.message = "step 3 (line 12): the target has no 'approve' control";
  many.scenarios.push_back(aborted);
  EXPECT_EQ(skip_summary_text(many),
            "SKIPPED 4 scenario runs \xE2\x80\x94 the target lacks: control 'approve' (4), feature 'coaps' (2)");
  EXPECT_EQ(skip_summary_text(conformance::RunResult{}), "SKIPPED 0 scenario runs");
  conformance::ScenarioResult fail_fast;
  fail_fast.verdict = Verdict::skip;
  fail_fast.message = "not run: --fail-fast after an earlier failure";
  conformance::RunResult other;
  other.scenarios = {fail_fast, fail_fast};
  EXPECT_EQ(skip_summary_text(other), "SKIPPED 2 scenario runs \xE2\x80\x94 not run: --fail-fast after an earlier failure (2)");
}

TEST(EvidenceStepsTest, FailuresAndWarningsButNotPassInfoOrSkip) {
  for (const Verdict v : all_verdicts()) {
    const bool expected = v == Verdict::warn || v == Verdict::xfail || v == Verdict::xpass || v == Verdict::fail ||
                          v == Verdict::error;
    EXPECT_EQ(has_evidence(v), expected) << to_string(v);
  }
  const auto run = sample_run();
  const auto warned = evidence_steps(run.scenarios[7]);
  ASSERT_EQ(warned.size(), 1u);
  EXPECT_EQ(warned[0]->index, 1u);
  EXPECT_TRUE(failing_steps(run.scenarios[7]).empty());
  EXPECT_TRUE(evidence_steps(run.scenarios[8]).empty());   // info
  EXPECT_TRUE(evidence_steps(run.scenarios[11]).empty());  // a skipped step is not evidence
  const auto text = step_evidence(*warned[0]);
  EXPECT_NE(text.find("  warn: no Retry-After with 202\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  checks:\n    pass  status 202 == 202 (7030-4.2.3-a, MUST)\n"
                      "    warn  Retry-After header present (7030-4.2.3-b, SHOULD)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  response:\n    HTTP/1.1 202 Accepted\n"), std::string::npos) << text;
}

TEST(RunProfilesTest, RunOrderThenOthers) {
  auto run = sample_run();
  run.profiles = {"protocol-gateway"};
  EXPECT_EQ(run_profiles(run), (std::vector<std::string>{"protocol-gateway", "rfc7030"}));
}

TEST(SecondsTextTest, ThreeDecimalsNeverNegative) {
  EXPECT_EQ(seconds_text(1250), "1.250");
  EXPECT_EQ(seconds_text(0.4), "0.000");
  EXPECT_EQ(seconds_text(-5), "0.000");
  EXPECT_EQ(seconds_text(std::numeric_limits<double>::quiet_NaN()), "0.000");
}

TEST(MillisecondsTextTest, ReadableDurations) {
  EXPECT_EQ(milliseconds_text(1.54), "1.5 ms");
  EXPECT_EQ(milliseconds_text(12.25), "12 ms");
  EXPECT_EQ(milliseconds_text(12345), "12.345 s");
  EXPECT_EQ(milliseconds_text(-1), "0.0 ms");
}

TEST(StepEvidenceTest, ChecksThenRequestThenResponse) {
  const auto run = sample_run();
  const auto failing = failing_steps(run.scenarios[1]);
  ASSERT_EQ(failing.size(), 1u);
  const auto text = step_evidence(*failing[0]);
  const auto checks = text.find("  checks:\n    fail  status 200 == 403 (PG-ENR-3, MUST)\n    fail  body contains \"PG-ENR-3\" (MUST)\n");
  const auto request = text.find("  request (https TLSv1.3 as device-revoked):\n    POST /.well-known/est/simpleenroll");
  const auto response = text.find("  response:\n    HTTP/1.1 200 OK\n");
  const auto decoded = text.find("  decoded:\n    Certificate:");
  ASSERT_NE(checks, std::string::npos) << text;
  ASSERT_NE(request, std::string::npos) << text;
  ASSERT_NE(response, std::string::npos) << text;
  ASSERT_NE(decoded, std::string::npos) << text;
  EXPECT_LT(checks, request);
  EXPECT_LT(request, response);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_EQ(text.rfind("step 2, line 12, send: POST simpleenroll as device-revoked\n", 0), 0u) << text;

  EvidenceLimits limits;
  limits.decoded = false;
  EXPECT_EQ(step_evidence(*failing[0], limits).find("decoded"), std::string::npos);
}

TEST(WriteTextFileTest, CreatesDirectoriesAndReplacesAtomically) {
  const auto dir = temp_dir("write");
  const auto path = dir / "a" / "b" / "report.txt";
  ASSERT_TRUE(write_text_file(path, "first").ok());
  ASSERT_TRUE(write_text_file(path, "second").ok());
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "second");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(path.parent_path()), {}), 1);  // no temporary left

  const auto error = write_text_file(path / "under-a-file", "x");
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.error().code, ErrorCode::io);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace estlab::reports::testing
