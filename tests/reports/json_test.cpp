#include "estlab/reports/json.hpp"

#include <gtest/gtest.h>

#include "estlab/reports/text.hpp"

namespace estlab::reports::testing {
struct CommandResult {
  int status = -1;
  std::string output;
};
conformance::RunResult sample_run();
CommandResult run_command(const std::string& command);
bool have_tool(const std::string& name);
std::filesystem::path temp_dir(const std::string& name);

namespace {

std::string python() {
  if (std::filesystem::exists("/usr/bin/python3")) return "/usr/bin/python3";
  return have_tool("python3") ? "python3" : "";
}

TEST(JsonStringTest, EscapesWhatJsonRequires) {
  EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_string("\r\n\t\b\f"), R"("\r\n\t\b\f")");
  EXPECT_EQ(json_string("\x01\x1b"), R"("\u0001\u001b")");
  EXPECT_EQ(json_string("</script> \xC3\xBC"), "\"</script> \xC3\xBC\"");
  EXPECT_EQ(json_string("\xFF"), "\"\xEF\xBF\xBD\"");
}

TEST(JsonReportTest, PythonParsesItAndFindsEveryPart) {
  const auto py = python();
  if (py.empty()) GTEST_SKIP() << "python3 is not installed";
  const auto dir = temp_dir("json");
  const auto file = dir / "results.json";
  ASSERT_TRUE(write_json(sample_run(), file).ok());
  // Every scenario, step and exchange, checked from the outside.
  const std::string script = R"py(
import json, sys
d = json.load(open(sys.argv[1], encoding='utf-8'))
assert d['format'] == 'estlab-conformance' and d['format_version'] == 2, d['format_version']
assert d['target'] == 'embedded lab' and d['estlab_version'] == '0.1.0'
assert d['started_at'] == '2025-01-02T03:04:05Z' and d['elapsed_ms'] == 1234.5
assert d['seed'] == '1234' and d['replay'] == '--seed 1234', (d['seed'], d['replay'])
assert d['strict'] is False and d['baseline'] == 'ci/baseline.txt'
assert d['all_passed'] is False
assert d['profiles'] == ['rfc7030', 'protocol-gateway']
assert d['readings'][0] == {'name': 'PG-ENR-4 polarity', 'value': 'documented'}, d['readings']
assert d['counts'] == {'total': 13, 'pass': 5, 'info': 1, 'warn': 1, 'skip': 2, 'xfail': 1, 'xpass': 1, 'fail': 1,
                       'error': 1, 'partially_skipped': 1}, d['counts']
assert d['skipped'] == {'runs': 3, 'partially': 1,
                        'lacks': [{'what': "an identity for role 'device-revoked'", 'runs': 1},
                                  {'what': "control 'revoke'", 'runs': 1}, {'what': "feature 'serverkeygen'", 'runs': 1}],
                        'reasons': [{'reason': 'encrypted key delivery is not implemented (501)', 'runs': 1}]}, d['skipped']
s = d['scenarios']
assert len(s) == 13
assert [x['verdict'] for x in s] == ['pass', 'fail', 'pass', 'skip', 'error', 'pass', 'pass', 'warn', 'info', 'xfail',
                                     'xpass', 'pass', 'skip'], [x['verdict'] for x in s]
f = s[1]
assert f['id'] == 'enroll-revoked-refused' and f['profile'] == 'protocol-gateway'
assert f['requirements'] == ['PG-ENR-3'] and f['spec'] == 'protocol-gateway' and f['section'] == 'PG-ENR'
assert f['title'] == 'Revoked "device" <refused> & logged \u2014 Gr\u00fc\u00dfe \u00dcBER', f['title']
assert f['message'] == 'status: expected 403, got 200 \x01'
assert f['unique'] == '' and f['baseline_reason'] == '' and f['skipped_steps'] == 0
step = f['steps'][1]
assert step['index'] == 1 and step['line'] == 12 and step['kind'] == 'send' and step['verdict'] == 'fail'
assert step['checks'] == [{'what': 'status 200 == 403', 'verdict': 'fail', 'requirement': 'PG-ENR-3', 'level': 'MUST'},
                          {'what': 'body contains "PG-ENR-3"', 'verdict': 'fail', 'requirement': '', 'level': 'MUST'}], step['checks']
x = step['exchange']
assert x['transport'] == 'https TLSv1.3 as device-revoked' and x['elapsed_ms'] == 4.0
assert x['request'].startswith('POST /.well-known/est/simpleenroll HTTP/1.1\r\n')
assert "<script>alert('x')</script>" in x['response']
assert '\x1b[31mred' in x['response'] and '\ufffd\ufffd tab\there' in x['response'], repr(x['response'])
assert '\u2713 \U0001F600' in x['response']
assert x['decoded'].startswith('Certificate:')
assert f['steps'][0]['exchange'] is None
assert s[5]['repetition'] == 0 and s[6]['repetition'] == 1
assert s[3]['message'] == 'encrypted key delivery is not implemented (501)'
assert s[3]['steps'] == []
w = s[7]
assert w['unique'] == 'u1234-7' and w['message'] == 'step 2 (line 9): no Retry-After with 202'
assert [c['verdict'] + ' ' + c['level'] for c in w['steps'][1]['checks']] == ['pass MUST', 'warn SHOULD']
assert w['steps'][1]['verdict'] == 'warn' and w['steps'][1]['exchange']['response'].startswith('HTTP/1.1 202')
assert s[8]['steps'][0]['checks'] == [{'what': 'csrattrs offered: 204 No Content', 'verdict': 'info',
                                       'requirement': '7030-4.5.2-a', 'level': 'MAY'}]
assert s[9]['baseline_reason'] == 'vendor bug 12: answers 200 to text/plain'
assert s[10]['baseline_reason'] == 'PG-ENR-4 is not implemented before firmware 2.3'
assert s[11]['skipped_steps'] == 1 and s[11]['steps'][1]['verdict'] == 'skip'
print('ok')
)py";
  ASSERT_TRUE(write_text_file(dir / "check.py", script).ok());
  const auto result = run_command(py + " '" + (dir / "check.py").string() + "' '" + file.string() + "'");
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(result.output, "ok\n");
  std::filesystem::remove_all(dir);
}

TEST(JsonReportTest, StableLayout) {
  const auto json = json_report(sample_run());
  EXPECT_EQ(json.rfind("{\n  \"format\": \"estlab-conformance\",\n  \"format_version\": 2,\n", 0), 0u) << json;
  EXPECT_NE(json.find("\n  \"elapsed_ms\": 1234.500,\n  \"seed\": \"1234\",\n  \"replay\": \"--seed 1234\",\n"
                      "  \"strict\": false,\n  \"baseline\": \"ci/baseline.txt\",\n  \"all_passed\": false,\n"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\n  \"counts\": {\n    \"total\": 13,\n    \"pass\": 5,\n    \"info\": 1,\n    \"warn\": 1,\n"
                      "    \"skip\": 2,\n    \"xfail\": 1,\n    \"xpass\": 1,\n    \"fail\": 1,\n    \"error\": 1,\n"
                      "    \"partially_skipped\": 1\n  },\n"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"checks\": [\n            {\n              \"what\": \"status 200 == 403\",\n"
                      "              \"verdict\": \"fail\",\n              \"requirement\": \"PG-ENR-3\",\n"
                      "              \"level\": \"MUST\"\n            },"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"repetition\": 0,\n      \"unique\": \"u1234-7\",\n      \"verdict\": \"warn\",\n"),
            std::string::npos);
  EXPECT_NE(json.find("\"baseline_reason\": \"vendor bug 12: answers 200 to text/plain\",\n      \"skipped_steps\": 0,"),
            std::string::npos);
  EXPECT_NE(json.find("\"steps\": []"), std::string::npos);
  EXPECT_NE(json.find("\"checks\": []"), std::string::npos);
  EXPECT_NE(json.find("\"exchange\": null"), std::string::npos);
  EXPECT_NE(json.find("\"elapsed_ms\": 12.250"), std::string::npos);
  EXPECT_EQ(json.back(), '\n');
  EXPECT_EQ(json, json_report(sample_run()));  // same input, same bytes
  EXPECT_EQ(valid_utf8(json), json);
}

TEST(JsonReportTest, EveryVerdictAsItsStableString) {
  auto run = sample_run();
  for (const auto verdict : all_verdicts()) {
    run.scenarios[0].verdict = verdict;
    run.scenarios[0].steps[1].checks[0].verdict = verdict;
    const auto json = json_report(run);
    const std::string name = to_string(verdict);
    EXPECT_NE(json.find("\"verdict\": \"" + name + "\",\n      \"message\""), std::string::npos) << name;
    EXPECT_NE(json.find("\"what\": \"status 200 == 200\",\n              \"verdict\": \"" + name + "\""),
              std::string::npos)
        << name;
  }
}

TEST(JsonReportTest, SeedIsExactAndStrictFailsOnWarnings) {
  auto run = sample_run();
  run.seed = 18446744073709551615u;
  run.scenarios = {run.scenarios[0], run.scenarios[7]};  // pass, warn
  auto json = json_report(run);
  EXPECT_NE(json.find("\"seed\": \"18446744073709551615\","), std::string::npos) << json;
  EXPECT_NE(json.find("\"all_passed\": true"), std::string::npos);
  run.strict = true;
  json = json_report(run);
  EXPECT_NE(json.find("\"strict\": true"), std::string::npos);
  EXPECT_NE(json.find("\"all_passed\": false"), std::string::npos);
}

TEST(JsonReportTest, EmptyRun) {
  const auto json = json_report(conformance::RunResult{});
  EXPECT_NE(json.find("\"scenarios\": []"), std::string::npos) << json;
  EXPECT_NE(json.find("\"readings\": []"), std::string::npos);
  EXPECT_NE(json.find("\"all_passed\": true"), std::string::npos);
  EXPECT_NE(json.find("\"seed\": \"0\""), std::string::npos);
  EXPECT_NE(json.find("\"skipped\": {\n    \"runs\": 0,\n    \"partially\": 0,\n    \"lacks\": [],\n    \"reasons\": []\n  }"),
            std::string::npos)
      << json;
}

}  // namespace
TEST(JsonReportTest, CarriesTheCatalogsWordsForEveryRequirement) {
  auto run = sample_run();
  run.requirement_texts = {{"7030-4.2.1-a", "MUST: the enroll body is a PKCS#10 CSR"}, {"PG-ENR-4", "product rule: \"last issued\" only"}};
  const auto json = json_report(run);
  EXPECT_NE(json.find("\"requirements\": {"), std::string::npos) << json.substr(0, 2000);
  EXPECT_NE(json.find("\"7030-4.2.1-a\": \"MUST: the enroll body is a PKCS#10 CSR\""), std::string::npos);
  EXPECT_NE(json.find("\"PG-ENR-4\": \"product rule: \\\"last issued\\\" only\""), std::string::npos) << "escaped";
}

}  // namespace estlab::reports::testing
