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
assert d['format'] == 'estlab-conformance' and d['format_version'] == 1, d['format']
assert d['target'] == 'embedded lab' and d['estlab_version'] == '0.1.0'
assert d['started_at'] == '2025-01-02T03:04:05Z' and d['elapsed_ms'] == 1234.5
assert d['all_passed'] is False
assert d['profiles'] == ['rfc7030', 'protocol-gateway']
assert d['readings'][0] == {'name': 'PG-ENR-4 polarity', 'value': 'documented'}, d['readings']
assert d['counts'] == {'total': 7, 'pass': 4, 'fail': 1, 'skip': 1, 'error': 1}, d['counts']
s = d['scenarios']
assert len(s) == 7
assert [x['verdict'] for x in s] == ['pass', 'fail', 'pass', 'skip', 'error', 'pass', 'pass']
f = s[1]
assert f['id'] == 'enroll-revoked-refused' and f['profile'] == 'protocol-gateway'
assert f['requirements'] == ['PG-ENR-3'] and f['spec'] == 'protocol-gateway' and f['section'] == 'PG-ENR'
assert f['title'] == 'Revoked "device" <refused> & logged \u2014 Gr\u00fc\u00dfe \u00dcBER', f['title']
assert f['message'] == 'status: expected 403, got 200 \x01'
step = f['steps'][1]
assert step['index'] == 1 and step['line'] == 12 and step['kind'] == 'send' and step['verdict'] == 'fail'
assert step['checks'] == ['status 200 == 403', 'body contains "PG-ENR-3"']
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
  EXPECT_EQ(json.rfind("{\n  \"format\": \"estlab-conformance\",\n  \"format_version\": 1,\n", 0), 0u) << json;
  EXPECT_NE(json.find("\n  \"counts\": {\n    \"total\": 7,\n    \"pass\": 4,\n    \"fail\": 1,\n    \"skip\": 1,\n"
                      "    \"error\": 1\n  },\n"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"steps\": []"), std::string::npos);
  EXPECT_NE(json.find("\"exchange\": null"), std::string::npos);
  EXPECT_NE(json.find("\"elapsed_ms\": 12.250"), std::string::npos);
  EXPECT_EQ(json.back(), '\n');
  EXPECT_EQ(json, json_report(sample_run()));  // same input, same bytes
  EXPECT_EQ(valid_utf8(json), json);
}

TEST(JsonReportTest, EmptyRun) {
  const auto json = json_report(conformance::RunResult{});
  EXPECT_NE(json.find("\"scenarios\": []"), std::string::npos) << json;
  EXPECT_NE(json.find("\"readings\": []"), std::string::npos);
  EXPECT_NE(json.find("\"all_passed\": true"), std::string::npos);
}

}  // namespace
}  // namespace estlab::reports::testing
