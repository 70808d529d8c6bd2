#include "estlab/reports/junit.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

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

using conformance::Verdict;

// A copy of ../shared/junit/junit.xsd, so the test is hermetic; the shared file is checked too
// when it is there.
constexpr const char* kJunitXsd = R"xsd(
<!--
  The JUnit XML report shape that CI servers (Jenkins' JUnit plugin, GitLab, GitHub test
  reporters) read. Validate with xmllint, giving it this file as the schema.
  Root: <testsuites> holding <testsuite> elements, or a single <testsuite>.
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">

  <xs:simpleType name="seconds">
    <xs:restriction base="xs:decimal">
      <xs:minInclusive value="0"/>
    </xs:restriction>
  </xs:simpleType>

  <xs:complexType name="outcome" mixed="true">
    <xs:attribute name="message" type="xs:string"/>
    <xs:attribute name="type" type="xs:string"/>
  </xs:complexType>

  <xs:complexType name="skippedOutcome" mixed="true">
    <xs:attribute name="message" type="xs:string"/>
  </xs:complexType>

  <xs:element name="properties">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="property" minOccurs="0" maxOccurs="unbounded">
          <xs:complexType mixed="true">
            <xs:attribute name="name" type="xs:string" use="required"/>
            <xs:attribute name="value" type="xs:string"/>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>

  <xs:element name="testcase">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="properties" minOccurs="0"/>
        <xs:choice minOccurs="0" maxOccurs="unbounded">
          <xs:element name="skipped" type="skippedOutcome"/>
          <xs:element name="error" type="outcome"/>
          <xs:element name="failure" type="outcome"/>
          <xs:element name="system-out" type="xs:string"/>
          <xs:element name="system-err" type="xs:string"/>
        </xs:choice>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="classname" type="xs:string" use="required"/>
      <xs:attribute name="time" type="seconds"/>
      <xs:attribute name="file" type="xs:string"/>
      <xs:attribute name="line" type="xs:nonNegativeInteger"/>
    </xs:complexType>
  </xs:element>

  <xs:element name="testsuite">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="properties" minOccurs="0"/>
        <xs:element ref="testcase" minOccurs="0" maxOccurs="unbounded"/>
        <xs:element name="system-out" type="xs:string" minOccurs="0"/>
        <xs:element name="system-err" type="xs:string" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="seconds"/>
      <xs:attribute name="timestamp" type="xs:dateTime"/>
      <xs:attribute name="hostname" type="xs:string"/>
      <xs:attribute name="id" type="xs:string"/>
      <xs:attribute name="package" type="xs:string"/>
    </xs:complexType>
  </xs:element>

  <xs:element name="testsuites">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="seconds"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
)xsd";

std::filesystem::path shared_xsd() {
  return std::filesystem::path(ESTLAB_TEST_DATA_DIR) / ".." / ".." / ".." / "shared" / "junit" / "junit.xsd";
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string quoted(const std::filesystem::path& path) { return "'" + path.string() + "'"; }

// xmllint --xpath on the report: the value of an XPath expression (count(...), string(...)).
std::string xpath(const std::filesystem::path& file, const std::string& expression) {
  auto result = run_command("xmllint --xpath \"" + expression + "\" " + quoted(file));
  while (!result.output.empty() && result.output.back() == '\n') result.output.pop_back();
  return result.output;
}

class JunitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_ = sample_run();
    xml_ = junit_xml(run_);
  }
  conformance::RunResult run_;
  std::string xml_;
};

TEST_F(JunitTest, ValidatesAgainstTheSchemaWithXmllint) {
  if (!have_tool("xmllint")) GTEST_SKIP() << "xmllint is not installed (Debian: libxml2-utils)";
  const auto dir = temp_dir("junit");
  const auto report = dir / "junit.xml";
  ASSERT_TRUE(write_junit(run_, report).ok());
  ASSERT_TRUE(write_text_file(dir / "junit.xsd", kJunitXsd).ok());

  auto result = run_command("xmllint --noout --schema " + quoted(dir / "junit.xsd") + " " + quoted(report));
  EXPECT_EQ(result.status, 0) << result.output << "\n" << xml_;
  if (std::filesystem::exists(shared_xsd())) {
    result = run_command("xmllint --noout --schema " + quoted(shared_xsd()) + " " + quoted(report));
    EXPECT_EQ(result.status, 0) << result.output;
  }

  // Every level under --strict (a warning as a failure) is valid too.
  auto strict = run_;
  strict.strict = true;
  const auto strict_report = dir / "strict.xml";
  ASSERT_TRUE(write_junit(strict, strict_report).ok());
  result = run_command("xmllint --noout --schema " + quoted(dir / "junit.xsd") + " " + quoted(strict_report));
  EXPECT_EQ(result.status, 0) << result.output;

  // An empty run is a valid report too.
  const auto empty = dir / "empty.xml";
  ASSERT_TRUE(write_junit(conformance::RunResult{}, empty).ok());
  result = run_command("xmllint --noout --schema " + quoted(dir / "junit.xsd") + " " + quoted(empty));
  EXPECT_EQ(result.status, 0) << result.output << "\n" << read(empty);
  std::filesystem::remove_all(dir);
}

TEST_F(JunitTest, OneSuitePerSpecWithCountsAndOneCasePerResult) {
  if (!have_tool("xmllint")) GTEST_SKIP() << "xmllint is not installed (Debian: libxml2-utils)";
  const auto dir = temp_dir("junit-shape");
  const auto file = dir / "junit.xml";
  ASSERT_TRUE(write_junit(run_, file).ok());

  EXPECT_EQ(xpath(file, "count(/testsuites/testsuite)"), "3");
  EXPECT_EQ(xpath(file, "string(/testsuites/@tests)"), "13");
  EXPECT_EQ(xpath(file, "string(/testsuites/@failures)"), "2");  // fail and xpass
  EXPECT_EQ(xpath(file, "string(/testsuites/@errors)"), "1");
  EXPECT_EQ(xpath(file, "string(/testsuites/@skipped)"), "3");   // two skips and an xfail
  EXPECT_EQ(xpath(file, "string(/testsuites/@time)"), "1.234");
  EXPECT_EQ(xpath(file, "count(//testcase)"), "13");

  const std::string rfc7030 = "/testsuites/testsuite[@name='RFC 7030']";
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/@tests)"), "8");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/@skipped)"), "3");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/@failures)"), "0");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/@time)"), "0.098");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/@timestamp)"), "2025-01-02T03:04:05Z");
  EXPECT_NE(xpath(file, "string(" + rfc7030 + "/@hostname)"), "");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/properties/property[@name='reading.PG-ENR-4 polarity']/@value)"),
            "documented");
  const std::string pg = "/testsuites/testsuite[@name='protocol-gateway']";
  EXPECT_EQ(xpath(file, "string(" + pg + "/@tests)"), "4");
  EXPECT_EQ(xpath(file, "string(" + pg + "/@failures)"), "2");
  EXPECT_EQ(xpath(file, "string(/testsuites/testsuite[@name='RFC 9148']/@errors)"), "1");

  const std::string cacerts = rfc7030 + "/testcase[@name='cacerts-basic [rfc7030]']";
  EXPECT_EQ(xpath(file, "string(" + cacerts + "/@classname)"), "estlab.RFC7030.4_1_2");
  EXPECT_EQ(xpath(file, "string(" + cacerts + "/@time)"), "0.012");
  EXPECT_EQ(xpath(file, "string(" + cacerts + "/@file)"), "conformance/scenarios/cacerts-basic.yaml");
  EXPECT_EQ(xpath(file, "string(" + cacerts + "/@line)"), "1");
  EXPECT_EQ(xpath(file, "count(" + cacerts + "/properties/property[@name='requirement'])"), "2");
  EXPECT_EQ(xpath(file, "string(" + cacerts + "/properties/property[@name='requirement'][2]/@value)"), "7030-4.1.3-a");
  EXPECT_EQ(xpath(file, "string(" + cacerts + "/properties/property[@name='profile']/@value)"), "rfc7030");
  EXPECT_EQ(xpath(file, "string(" + cacerts + "/properties/property[@name='transport']/@value)"), "https");
  EXPECT_EQ(xpath(file, "count(" + cacerts + "/failure|" + cacerts + "/error|" + cacerts + "/skipped)"), "0");
  EXPECT_NE(xpath(file, "string(" + cacerts + "/system-out)").find("[pass] step 2, line 7, send: GET cacerts"),
            std::string::npos);

  EXPECT_EQ(xpath(file, "count(" + rfc7030 + "/testcase[@name='enroll-basic [rfc7030]'])"), "1");
  EXPECT_EQ(xpath(file, "count(" + rfc7030 + "/testcase[@name='enroll-basic [rfc7030] #2'])"), "1");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/testcase[@name='serverkeygen-encrypted [rfc7030]']/skipped/@message)"),
            "encrypted key delivery is not implemented (501)");
  EXPECT_EQ(xpath(file, "string(//testcase[@name='coaps-cacerts [rfc7030]']/error/@message)"),
            "connect: DTLS handshake timed out");
  EXPECT_EQ(xpath(file, "string(//testcase[@name='coaps-cacerts [rfc7030]']/@classname)"), "estlab.RFC9148.2");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/properties/property[@name='seed']/@value)"), "1234");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/properties/property[@name='replay']/@value)"), "--seed 1234");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/properties/property[@name='strict']/@value)"), "false");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/properties/property[@name='baseline']/@value)"), "ci/baseline.txt");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/properties/property[@name='count.warn']/@value)"), "1");
  EXPECT_EQ(xpath(file, "string(" + rfc7030 + "/properties/property[@name='count.xfail']/@value)"), "1");
  EXPECT_EQ(xpath(file, "string(" + pg + "/properties/property[@name='count.xpass']/@value)"), "1");
  EXPECT_EQ(xpath(file, "string(" + pg + "/testcase[1]/@classname)"), "estlab.protocol-gateway.PG-ENR");
  EXPECT_EQ(xpath(file, "string(" + pg + "/testcase[1]/failure/@type)"), "assertion");
  std::filesystem::remove_all(dir);
}

// The mapping README.md documents: every level to the element CI servers understand, and a
// verdict property on every testcase.
TEST_F(JunitTest, EveryLevelMapsToItsElementAndCarriesAVerdictProperty) {
  if (!have_tool("xmllint")) GTEST_SKIP() << "xmllint is not installed (Debian: libxml2-utils)";
  const auto dir = temp_dir("junit-mapping");
  const auto file = dir / "junit.xml";
  ASSERT_TRUE(write_junit(run_, file).ok());
  const auto testcase = [](const std::string& name) { return "//testcase[@name='" + name + "']"; };
  const auto verdict = [&](const std::string& name) {
    return xpath(file, "string(" + testcase(name) + "/properties/property[@name='verdict']/@value)");
  };
  const auto outcomes = [&](const std::string& name) {
    const std::string t = testcase(name);
    return xpath(file, "count(" + t + "/failure)") + xpath(file, "count(" + t + "/error)") +
           xpath(file, "count(" + t + "/skipped)");  // failure, error, skipped
  };
  EXPECT_EQ(xpath(file, "count(//testcase[not(properties/property[@name='verdict'])])"), "0");
  EXPECT_EQ(xpath(file, "count(//testcase/properties/property[@name='verdict'])"), "13");

  // pass
  EXPECT_EQ(verdict("cacerts-basic [rfc7030]"), "pass");
  EXPECT_EQ(outcomes("cacerts-basic [rfc7030]"), "000");
  // fail -> <failure>
  EXPECT_EQ(verdict("enroll-revoked-refused [protocol-gateway]"), "fail");
  EXPECT_EQ(outcomes("enroll-revoked-refused [protocol-gateway]"), "100");
  // error -> <error>
  EXPECT_EQ(verdict("coaps-cacerts [rfc7030]"), "error");
  EXPECT_EQ(outcomes("coaps-cacerts [rfc7030]"), "010");
  // skip -> <skipped message=reason>
  EXPECT_EQ(verdict("serverkeygen-revoked-role [protocol-gateway]"), "skip");
  EXPECT_EQ(outcomes("serverkeygen-revoked-role [protocol-gateway]"), "001");
  EXPECT_EQ(xpath(file, "string(" + testcase("serverkeygen-revoked-role [protocol-gateway]") + "/skipped/@message)"),
            "the target lacks feature 'serverkeygen', an identity for role 'device-revoked'");
  // xfail -> <skipped message="xfail: reason">, the evidence inside
  const std::string xfail = testcase("enroll-wrong-content-type [protocol-gateway]");
  EXPECT_EQ(verdict("enroll-wrong-content-type [protocol-gateway]"), "xfail");
  EXPECT_EQ(outcomes("enroll-wrong-content-type [protocol-gateway]"), "001");
  EXPECT_EQ(xpath(file, "string(" + xfail + "/skipped/@message)"), "xfail: vendor bug 12: answers 200 to text/plain");
  EXPECT_NE(xpath(file, "string(" + xfail + "/skipped)").find("fail  status 200 == 415 (7030-4.2.1-a, MUST)"),
            std::string::npos);
  EXPECT_EQ(xpath(file, "string(" + xfail + "/properties/property[@name='baseline_reason']/@value)"),
            "vendor bug 12: answers 200 to text/plain");
  // xpass -> <failure message="xpass: ...">
  const std::string xpass = testcase("pg-enr-4-last-issued-only [protocol-gateway]");
  EXPECT_EQ(verdict("pg-enr-4-last-issued-only [protocol-gateway]"), "xpass");
  EXPECT_EQ(outcomes("pg-enr-4-last-issued-only [protocol-gateway]"), "100");
  EXPECT_EQ(xpath(file, "string(" + xpass + "/failure/@message)"),
            "xpass: the baseline says it fails (PG-ENR-4 is not implemented before firmware 2.3) but it passed");
  EXPECT_EQ(xpath(file, "string(" + xpass + "/failure/@type)"), "xpass");
  // warn -> passed, the warning and its evidence in <system-out>
  const std::string warn = testcase("enroll-retry-after [rfc7030]");
  EXPECT_EQ(verdict("enroll-retry-after [rfc7030]"), "warn");
  EXPECT_EQ(outcomes("enroll-retry-after [rfc7030]"), "000");
  const auto out = xpath(file, "string(" + warn + "/system-out)");
  EXPECT_EQ(out.rfind("warn: step 2 (line 9): no Retry-After with 202\n", 0), 0u) << out;
  EXPECT_NE(out.find("warn  Retry-After header present (7030-4.2.3-b, SHOULD)"), std::string::npos) << out;
  EXPECT_NE(out.find("HTTP/1.1 202 Accepted"), std::string::npos) << out;
  EXPECT_EQ(xpath(file, "string(" + warn + "/properties/property[@name='unique']/@value)"), "u1234-7");
  // info -> passed, what was recorded in <system-out>
  EXPECT_EQ(verdict("csrattrs-optional [rfc7030]"), "info");
  EXPECT_EQ(outcomes("csrattrs-optional [rfc7030]"), "000");
  EXPECT_NE(xpath(file, "string(" + testcase("csrattrs-optional [rfc7030]") + "/system-out)")
                .find("info  csrattrs offered: 204 No Content (7030-4.5.2-a, MAY)"),
            std::string::npos);
  // A partially skipped run passes and says how many steps it skipped.
  EXPECT_EQ(outcomes("revoked-at-ca-then-refused [protocol-gateway]"), "000");
  EXPECT_EQ(xpath(file, "string(" + testcase("revoked-at-ca-then-refused [protocol-gateway]") +
                            "/properties/property[@name='skipped_steps']/@value)"),
            "1");
  std::filesystem::remove_all(dir);
}

TEST_F(JunitTest, StrictTurnsAWarningIntoAFailure) {
  run_.strict = true;
  const auto xml = junit_xml(run_);
  const auto at = xml.find("<testcase name=\"enroll-retry-after [rfc7030]\"");
  ASSERT_NE(at, std::string::npos);
  const auto end = xml.find("</testcase>", at);
  const auto testcase = xml.substr(at, end - at);
  EXPECT_NE(testcase.find("<failure message=\"warn (--strict): step 2 (line 9): no Retry-After with 202\" type=\"warn\">"),
            std::string::npos)
      << testcase;
  EXPECT_NE(testcase.find("<property name=\"verdict\" value=\"warn\" />"), std::string::npos) << testcase;
  EXPECT_NE(xml.find("<testsuites name=\"estlab\" tests=\"13\" failures=\"3\" errors=\"1\" skipped=\"3\""),
            std::string::npos);
  EXPECT_NE(xml.find("<property name=\"strict\" value=\"true\" />"), std::string::npos);
}

// CI servers key a test's history on classname + name: the same scenario under two profiles or
// repeated must not collapse into one testcase.
TEST(JunitNamesTest, UniquePerProfileAndRepetition) {
  conformance::RunResult run;
  for (const char* profile : {"rfc7030", "protocol-gateway"}) {
    for (int rep = 0; rep < 3; ++rep) {
      conformance::ScenarioResult s;
      s.id = "cacerts-anonymous";
      s.profile = profile;
      s.spec = "RFC 7030";
      s.section = "4.1";
      s.repetition = rep;
      run.scenarios.push_back(s);
    }
  }
  run.scenarios.push_back(run.scenarios[0]);  // the very same run twice: still two names
  const auto xml = junit_xml(run);
  std::vector<std::string> names;
  const std::regex name_attribute("<testcase name=\"([^\"]*)\"");
  for (std::sregex_iterator it(xml.begin(), xml.end(), name_attribute), end; it != end; ++it) names.push_back((*it)[1]);
  EXPECT_EQ(names, (std::vector<std::string>{"cacerts-anonymous [rfc7030]", "cacerts-anonymous [rfc7030] #2",
                                             "cacerts-anonymous [rfc7030] #3", "cacerts-anonymous [protocol-gateway]",
                                             "cacerts-anonymous [protocol-gateway] #2",
                                             "cacerts-anonymous [protocol-gateway] #3",
                                             "cacerts-anonymous [rfc7030] (2)"}));
  EXPECT_NE(xml.find("<property name=\"scenario\" value=\"cacerts-anonymous\" />"), std::string::npos);
  EXPECT_NE(xml.find("<property name=\"repetition\" value=\"2\" />"), std::string::npos);
}

TEST_F(JunitTest, FailureCarriesChecksRequestAndResponseEscaped) {
  const auto failure = xml_.find("<failure");
  ASSERT_NE(failure, std::string::npos);
  const auto end = xml_.find("</failure>", failure);
  ASSERT_NE(end, std::string::npos);
  const std::string text = xml_.substr(failure, end - failure);
  EXPECT_NE(text.find("message=\"status: expected 403, got 200 \\x01\""), std::string::npos) << text;
  EXPECT_NE(text.find("fail  status 200 == 403 (PG-ENR-3, MUST)"), std::string::npos) << text;
  EXPECT_NE(text.find("fail  body contains \"PG-ENR-3\" (MUST)"), std::string::npos) << text;  // quotes need no escape in text
  EXPECT_NE(text.find("POST /.well-known/est/simpleenroll HTTP/1.1"), std::string::npos);
  EXPECT_NE(text.find("MIIC&lt;csr&gt;&amp;amp;"), std::string::npos) << text;
  EXPECT_NE(text.find("&lt;script&gt;alert('x')&lt;/script&gt; &amp;"), std::string::npos) << text;
  EXPECT_NE(text.find("\xE2\x9C\x93 \xF0\x9F\x98\x80"), std::string::npos);  // UTF-8 kept as is
  EXPECT_NE(text.find("Subject: CN=device-revoked"), std::string::npos);
  EXPECT_LT(text.find("status 200 == 403"), text.find("POST /.well-known"));
  EXPECT_LT(text.find("POST /.well-known"), text.find("HTTP/1.1 200 OK"));
}

TEST_F(JunitTest, NoCharacterThatXml10Forbids) {
  EXPECT_EQ(xml_.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u);
  for (const char c : xml_) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_FALSE(byte < 0x20 && c != '\n' && c != '\t' && c != '\r') << "control byte " << int(byte);
  }
  EXPECT_EQ(xml_.find("&#x"), std::string::npos);  // pugixml's escapes for control characters
  EXPECT_EQ(valid_utf8(xml_), xml_);
  EXPECT_NE(xml_.find("\\x1B[31mred"), std::string::npos);
}

TEST_F(JunitTest, LeavesOutATimestampThatIsNotAnXsDateTime) {
  run_.started_at = "yesterday";
  EXPECT_EQ(junit_xml(run_).find("timestamp="), std::string::npos);
}

TEST_F(JunitTest, WriteReportsAnUnwritablePath) {
  const auto dir = temp_dir("junit-error");
  ASSERT_TRUE(write_text_file(dir / "file", "x").ok());
  const auto result = write_junit(run_, dir / "file" / "junit.xml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::io);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace estlab::reports::testing
