#include "estlab/conformance/baseline.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>

#include "estlab/core/result.hpp"

namespace estlab::conformance {
namespace {

class BaselineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("estlab-baseline-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path write(const std::string& text) {
    const auto path = dir_ / "baseline.yaml";
    std::ofstream(path) << text;
    return path;
  }

  // The ConfigError message load_baseline throws for this text ("" when it loads).
  std::string error_of(const std::string& text) {
    try {
      load_baseline(write(text));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir_;
};

CheckResult check(const std::string& what, Verdict v) { return CheckResult{what, v, "", v == Verdict::warn ? "SHOULD" : "MUST"}; }

StepResult step(std::size_t index, Verdict v, const std::string& message = "", std::vector<CheckResult> checks = {}) {
  StepResult s;
  s.index = index;
  s.verdict = v;
  s.message = message;
  s.checks = std::move(checks);
  return s;
}

// A scenario of three steps: connect (pass), send (verdict v with one check of v and one pass),
// send (pass); its verdict is the worst.
ScenarioResult scenario(const std::string& id, const std::string& profile, Verdict v, const std::string& message = "") {
  ScenarioResult s;
  s.id = id;
  s.profile = profile;
  s.steps.push_back(step(0, Verdict::pass));
  s.steps.push_back(step(1, v, message, {check("status 200", Verdict::pass), check("content-type", v)}));
  s.steps.push_back(step(2, Verdict::pass, "", {check("status 200", Verdict::pass)}));
  s.verdict = v;
  s.message = message;
  return s;
}

BaselineEntry entry(const std::string& id, Verdict v, const std::string& reason = "known") {
  BaselineEntry e;
  e.scenario = id;
  e.verdict = v;
  e.reason = reason;
  return e;
}

RunResult run_of(std::vector<ScenarioResult> scenarios) {
  RunResult r;
  r.target = "vendor gateway 2.3 (vendor.yaml)";
  r.started_at = "2025-03-04T05:06:07Z";
  r.estlab_version = "0.1.0";
  r.scenarios = std::move(scenarios);
  return r;
}

// --- loading ---------------------------------------------------------------------------------

TEST_F(BaselineTest, LoadsEveryField) {
  const auto b = load_baseline(write(R"(# estlab baseline: known deviations of vendor
seed: 1234
entries:
  - scenario: cacerts-anonymous
    profile: rfc7030
    step: 2
    verdict: warn
    reason: "vendor ticket 123: no smime-type on cacerts"
    message: "smime-type"
  - scenario: enroll-expired
    reason: ticket 7
)"));
  ASSERT_EQ(b.entries.size(), 2u);
  EXPECT_EQ(b.seed, 1234u);
  const auto& a = b.entries[0];
  EXPECT_EQ(a.scenario, "cacerts-anonymous");
  EXPECT_EQ(a.profile, "rfc7030");
  EXPECT_EQ(a.step, 2u);
  EXPECT_EQ(a.verdict, Verdict::warn);
  EXPECT_EQ(a.reason, "vendor ticket 123: no smime-type on cacerts");
  EXPECT_EQ(a.message, "smime-type");
  EXPECT_EQ(a.line, 4);
  const auto& d = b.entries[1];
  EXPECT_EQ(d.profile, "");
  EXPECT_FALSE(d.step.has_value());
  EXPECT_EQ(d.verdict, Verdict::fail);  // the default
  EXPECT_EQ(d.line, 10);
  EXPECT_NE(b.file.find("baseline.yaml"), std::string::npos);
}

TEST_F(BaselineTest, EmptyEntryListLoads) {
  const auto b = load_baseline(write("entries: []\n"));
  EXPECT_TRUE(b.entries.empty());
  EXPECT_FALSE(b.seed.has_value());
}

TEST_F(BaselineTest, BadFilesNameFileAndLine) {
  const std::string head = "entries:\n  - scenario: a\n";
  auto expect_error = [&](const std::string& text, const std::string& where, const std::string& what) {
    const auto message = error_of(text);
    EXPECT_NE(message.find("baseline.yaml:" + where + ": "), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
  };
  expect_error(head + "    reason: r\n    verdic: fail\n", "4", "unknown key 'verdic'");
  expect_error(head + "    reason: r\n    verdict: xfail\n", "4", "verdict must be fail, error or warn");
  expect_error(head + "    reason: r\n    verdict: pass\n", "4", "not 'pass'");
  expect_error(head + "    verdict: fail\n", "2", "without a reason");
  expect_error(head + "    reason: \"\"\n", "3", "empty reason");
  expect_error("entries:\n  - reason: r\n", "2", "without a scenario id");
  expect_error(head + "    reason: r\n    step: 0\n", "4", "step must be a step number from 1");
  expect_error(head + "    reason: r\n    step: two\n", "4", "not 'two'");
  expect_error(head + "    reason: r\n    profile: est\n", "4", "profile must be rfc7030 or protocol-gateway");
  expect_error(head + "    reason: r\n    message: \"(unclosed\"\n", "4", "not a valid regex");
  expect_error(head + "    reason: r\n  - scenario: a\n    reason: again\n", "4", "a second entry for scenario 'a'");
  expect_error("seed: 1\nentries: []\nextra: 1\n", "3", "unknown key 'extra'");
  expect_error("seed: -3\nentries: []\n", "1", "seed must be a non-negative integer");
  expect_error("entries:\n  scenario: a\n", "2", "entries must be a list");
  expect_error("entries:\n  - [a, b]\n", "2", "an entry is a mapping");
  expect_error("entries: [\n", "2", "YAML syntax");
  expect_error("seed: 1\n", "1", "missing entries");
  expect_error("- a\n- b\n", "1", "one mapping");
}

TEST_F(BaselineTest, SameScenarioUnderTwoProfilesOrStepsIsNoDuplicate) {
  EXPECT_EQ(error_of("entries:\n"
                     "  - {scenario: a, profile: rfc7030, reason: r}\n"
                     "  - {scenario: a, profile: protocol-gateway, reason: r}\n"
                     "  - {scenario: a, step: 2, reason: r}\n"
                     "  - {scenario: a, reason: r}\n"),
            "");
}

TEST_F(BaselineTest, MissingFileIsAConfigError) {
  try {
    load_baseline(dir_ / "nope.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.yaml: cannot read"), std::string::npos) << e.what();
  }
}

// --- applying: scenario entries --------------------------------------------------------------

TEST_F(BaselineTest, KnownFailureBecomesXfail) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::fail, "no smime-type"), scenario("b", "rfc7030", Verdict::fail, "other")});
  Baseline b{{entry("a", Verdict::fail, "ticket 1")}, "base.yaml", std::nullopt};
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[0].baseline_reason, "ticket 1");
  EXPECT_EQ(run.scenarios[0].message, "no smime-type");  // the evidence stays
  EXPECT_EQ(run.scenarios[1].verdict, Verdict::fail);   // not in the baseline
  EXPECT_EQ(run.scenarios[1].baseline_reason, "");
  EXPECT_EQ(run.baseline, "base.yaml");
  EXPECT_FALSE(run.all_passed());  // b still fails
}

TEST_F(BaselineTest, KnownFailureThatNowPassesBecomesXpass) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::pass), scenario("i", "rfc7030", Verdict::info)});
  Baseline b{{entry("a", Verdict::fail, "ticket 1"), entry("i", Verdict::warn, "ticket 2")}, "base.yaml", std::nullopt};
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xpass);
  EXPECT_EQ(run.scenarios[0].baseline_reason, "ticket 1");
  EXPECT_NE(run.scenarios[0].message.find("base.yaml"), std::string::npos) << run.scenarios[0].message;
  EXPECT_NE(run.scenarios[0].message.find("expects fail"), std::string::npos) << run.scenarios[0].message;
  EXPECT_EQ(run.scenarios[1].verdict, Verdict::xpass);
}

TEST_F(BaselineTest, FailingDifferentlyStaysAsItIs) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::error, "hook broke"), scenario("w", "rfc7030", Verdict::warn, "slow"),
                     scenario("m", "rfc7030", Verdict::fail, "status 500")});
  Baseline b{{entry("a", Verdict::fail), entry("w", Verdict::fail), entry("m", Verdict::fail)}, "", std::nullopt};
  b.entries[2].message = "smime-type";
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::error);
  EXPECT_EQ(run.scenarios[1].verdict, Verdict::warn);
  EXPECT_EQ(run.scenarios[2].verdict, Verdict::fail);
  for (const auto& s : run.scenarios) EXPECT_EQ(s.baseline_reason, "");
}

TEST_F(BaselineTest, MessageIsARegexSearched) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::fail, "content-type: expected application/pkcs7-mime; smime-type=certs-only")});
  Baseline b{{entry("a", Verdict::fail)}, "", std::nullopt};
  b.entries[0].message = "smime-type=[a-z-]+";
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xfail);
}

TEST_F(BaselineTest, ProfileRestrictsTheEntry) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::fail), scenario("a", "protocol-gateway", Verdict::fail)});
  Baseline b{{entry("a", Verdict::fail)}, "", std::nullopt};
  b.entries[0].profile = "protocol-gateway";
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::fail);
  EXPECT_EQ(run.scenarios[1].verdict, Verdict::xfail);
}

TEST_F(BaselineTest, WarnAndErrorEntries) {
  auto run = run_of({scenario("w", "rfc7030", Verdict::warn), scenario("e", "rfc7030", Verdict::error)});
  Baseline b{{entry("w", Verdict::warn), entry("e", Verdict::error)}, "", std::nullopt};
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[1].verdict, Verdict::xfail);
  EXPECT_TRUE(run.all_passed());
}

TEST_F(BaselineTest, SkippedScenariosAreLeftAlone) {
  auto skipped = scenario("a", "rfc7030", Verdict::skip, "target lacks role ra-officer");
  auto run = run_of({skipped});
  Baseline b{{entry("a", Verdict::fail)}, "", std::nullopt};
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::skip);
  EXPECT_EQ(run.scenarios[0].baseline_reason, "");
  EXPECT_EQ(run.scenarios[0].message, "target lacks role ra-officer");
}

TEST_F(BaselineTest, EveryRepetitionIsMarked) {
  auto first = scenario("a", "rfc7030", Verdict::fail);
  auto second = scenario("a", "rfc7030", Verdict::pass);
  second.repetition = 1;
  auto run = run_of({first, second});
  apply_baseline(Baseline{{entry("a", Verdict::fail)}, "", std::nullopt}, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[1].verdict, Verdict::xpass);  // flaky: worth seeing
}

TEST_F(BaselineTest, TheFirstMatchingScenarioEntryWins) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::fail, "status 500")});
  Baseline b{{entry("a", Verdict::fail, "for 403"), entry("a", Verdict::fail, "for 500")}, "", std::nullopt};
  b.entries[0].message = "403";
  b.entries[0].profile = "rfc7030";
  apply_baseline(b, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[0].baseline_reason, "for 500");
}

// --- applying: step entries ------------------------------------------------------------------

TEST_F(BaselineTest, StepEntryTurnsThatStepsChecksIntoXfail) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::fail, "no smime-type")});
  auto e = entry("a", Verdict::fail, "ticket 9");
  e.step = 2;
  apply_baseline(Baseline{{e}, "", std::nullopt}, run);
  const auto& s = run.scenarios[0];
  EXPECT_EQ(s.steps[1].checks[0].verdict, Verdict::pass);
  EXPECT_EQ(s.steps[1].checks[1].verdict, Verdict::xfail);
  EXPECT_EQ(s.steps[1].verdict, Verdict::xfail);
  EXPECT_EQ(s.verdict, Verdict::xfail);  // the worst of pass, xfail, pass
  EXPECT_EQ(s.baseline_reason, "ticket 9");
}

TEST_F(BaselineTest, StepEntryLeavesOtherFailingStepsFailing) {
  auto s = scenario("a", "rfc7030", Verdict::fail, "no smime-type");
  s.steps[2] = step(2, Verdict::fail, "status 500", {check("status 200", Verdict::fail)});
  auto run = run_of({s});
  auto e = entry("a", Verdict::fail);
  e.step = 2;
  apply_baseline(Baseline{{e}, "", std::nullopt}, run);
  EXPECT_EQ(run.scenarios[0].steps[1].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[0].steps[2].verdict, Verdict::fail);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::fail);
}

TEST_F(BaselineTest, StepEntryKeepsAWorseCheckOfTheSameStep) {
  auto s = scenario("a", "rfc7030", Verdict::fail);
  s.steps[1].checks.push_back(check("body", Verdict::error));
  auto run = run_of({s});
  auto e = entry("a", Verdict::fail);
  e.step = 2;
  apply_baseline(Baseline{{e}, "", std::nullopt}, run);
  EXPECT_EQ(run.scenarios[0].steps[1].checks[1].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[0].steps[1].verdict, Verdict::error);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::error);
}

TEST_F(BaselineTest, StepEntryOfAStepThatNowPassesMakesXpass) {
  auto s = scenario("a", "rfc7030", Verdict::pass);
  auto run = run_of({s});
  auto e = entry("a", Verdict::warn, "ticket 4");
  e.step = 3;
  apply_baseline(Baseline{{e}, "b.yaml", std::nullopt}, run);
  EXPECT_EQ(run.scenarios[0].steps[2].verdict, Verdict::xpass);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xpass);
  EXPECT_EQ(run.scenarios[0].baseline_reason, "ticket 4");
  EXPECT_NE(run.scenarios[0].message.find("expects warn"), std::string::npos) << run.scenarios[0].message;
}

TEST_F(BaselineTest, StepEntryMatchesTheStepsMessageAndVerdict) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::fail, "status 500"), scenario("b", "rfc7030", Verdict::error, "x")});
  auto wrong_message = entry("a", Verdict::fail);
  wrong_message.step = 2;
  wrong_message.message = "^status 4";
  auto wrong_verdict = entry("b", Verdict::fail);
  wrong_verdict.step = 2;
  apply_baseline(Baseline{{wrong_message, wrong_verdict}, "", std::nullopt}, run);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::fail);
  EXPECT_EQ(run.scenarios[0].steps[1].verdict, Verdict::fail);
  EXPECT_EQ(run.scenarios[1].verdict, Verdict::error);
}

TEST_F(BaselineTest, StepEntryOfASkippedStepOrAMissingStepDoesNothing) {
  auto s = scenario("a", "rfc7030", Verdict::pass);
  s.steps[2] = step(2, Verdict::skip, "needs manual-approval");
  auto run = run_of({s});
  auto skipped = entry("a", Verdict::fail);
  skipped.step = 3;
  auto beyond = entry("a", Verdict::fail);
  beyond.step = 9;
  apply_baseline(Baseline{{skipped, beyond}, "", std::nullopt}, run);
  EXPECT_EQ(run.scenarios[0].steps[2].verdict, Verdict::skip);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::pass);
  EXPECT_EQ(run.scenarios[0].baseline_reason, "");
}

TEST_F(BaselineTest, StepEntryWithoutChecksStillBecomesXfail) {
  auto s = scenario("a", "rfc7030", Verdict::error, "hook exited 1");
  s.steps[1].checks.clear();
  auto run = run_of({s});
  auto e = entry("a", Verdict::error);
  e.step = 2;
  apply_baseline(Baseline{{e}, "", std::nullopt}, run);
  EXPECT_EQ(run.scenarios[0].steps[1].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xfail);
}

// --- stale entries ---------------------------------------------------------------------------

TEST_F(BaselineTest, UnmatchedEntriesNameWhatTheRunDidNotHave) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::fail)});
  auto other_profile = entry("a", Verdict::fail, "pg only");
  other_profile.profile = "protocol-gateway";
  auto far_step = entry("a", Verdict::fail, "step 7");
  far_step.step = 7;
  Baseline b{{entry("a", Verdict::fail, "ok"), entry("renamed", Verdict::fail, "gone"), other_profile, far_step}, "", std::nullopt};
  const auto unmatched = unmatched_entries(b, run);
  ASSERT_EQ(unmatched.size(), 3u);
  EXPECT_EQ(unmatched[0].reason, "gone");
  EXPECT_EQ(unmatched[1].reason, "pg only");
  EXPECT_EQ(unmatched[2].reason, "step 7");
  apply_baseline(b, run);  // and they change nothing
  EXPECT_EQ(run.scenarios[0].verdict, Verdict::xfail);
  EXPECT_EQ(run.scenarios[0].baseline_reason, "ok");
}

// --- writing ---------------------------------------------------------------------------------

TEST_F(BaselineTest, WriteRecordsEveryDeviationOnceAndLoadsBack) {
  auto repeated = scenario("a", "rfc7030", Verdict::fail, "no smime-type\nsecond line");
  auto again = repeated;
  again.repetition = 1;
  auto run = run_of({repeated, again, scenario("a", "protocol-gateway", Verdict::pass), scenario("w", "protocol-gateway", Verdict::warn, "slow: \"3 s\""),
                     scenario("e", "rfc7030", Verdict::error, ""), scenario("s", "rfc7030", Verdict::skip, "no role"),
                     scenario("x", "rfc7030", Verdict::xfail, "known")});
  run.seed = 1234;
  const auto text = write_baseline(run);
  EXPECT_EQ(text.rfind("# estlab baseline: known deviations of vendor gateway 2.3 (vendor.yaml)", 0), 0u) << text;
  const auto b = load_baseline(write(text));
  EXPECT_EQ(b.seed, 1234u);
  ASSERT_EQ(b.entries.size(), 3u) << text;
  EXPECT_EQ(b.entries[0].scenario, "a");
  EXPECT_EQ(b.entries[0].profile, "rfc7030");
  EXPECT_EQ(b.entries[0].verdict, Verdict::fail);
  EXPECT_EQ(b.entries[0].reason, "recorded 2025-03-04 from vendor gateway 2.3 (vendor.yaml): no smime-type");
  EXPECT_FALSE(b.entries[0].step.has_value());
  EXPECT_EQ(b.entries[1].scenario, "w");
  EXPECT_EQ(b.entries[1].verdict, Verdict::warn);
  EXPECT_EQ(b.entries[1].reason, "recorded 2025-03-04 from vendor gateway 2.3 (vendor.yaml): slow: \"3 s\"");
  EXPECT_EQ(b.entries[2].scenario, "e");
  EXPECT_EQ(b.entries[2].verdict, Verdict::error);
  EXPECT_EQ(b.entries[2].reason, "recorded 2025-03-04 from vendor gateway 2.3 (vendor.yaml)");

  // Applied to the run it was recorded from, every deviation becomes xfail.
  apply_baseline(b, run);
  for (const auto& s : run.scenarios) {
    if ((s.id == "a" && s.profile == "rfc7030") || s.id == "w" || s.id == "e") {
      EXPECT_EQ(s.verdict, Verdict::xfail) << s.id;
    }
  }
  EXPECT_EQ(run.count(Verdict::fail) + run.count(Verdict::error) + run.count(Verdict::warn), 0u);
}

TEST_F(BaselineTest, WriteOfACleanRunHasAnEmptyListAndNoSeed) {
  auto run = run_of({scenario("a", "rfc7030", Verdict::pass)});
  run.started_at = "";
  const auto text = write_baseline(run);
  const auto b = load_baseline(write(text));
  EXPECT_TRUE(b.entries.empty()) << text;
  EXPECT_FALSE(b.seed.has_value());
  EXPECT_NE(text.find("entries: []"), std::string::npos) << text;
}

}  // namespace
}  // namespace estlab::conformance
