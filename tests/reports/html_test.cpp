#include "estlab/reports/html.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <tuple>

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

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// The <tr> of one requirement in table#matrix.
std::string matrix_row(const std::string& html, const std::string& requirement) {
  const auto start = html.find("<tr class=\"requirement\" id=\"requirement-" + requirement + "\"");
  if (start == std::string::npos) return "";
  return html.substr(start, html.find("</tr>", start) - start);
}

class HtmlTest : public ::testing::Test {
 protected:
  void SetUp() override { html_ = html_report(sample_run()); }
  std::string html_;
};

TEST_F(HtmlTest, MatrixHasOneRowPerRequirementInNaturalOrder) {
  ASSERT_NE(html_.find("<table id=\"matrix\">"), std::string::npos);
  EXPECT_NE(html_.find("<thead><tr><th>requirement</th><th>rfc7030</th><th>protocol-gateway</th></tr></thead>"),
            std::string::npos);
  const std::vector<std::string> expected = {"7030-4.1.2-a", "7030-4.1.3-a", "7030-4.2.1-a", "7030-4.2.3-a",
                                             "7030-4.2.3-b", "7030-4.4.1-a", "7030-4.4.2-a", "7030-4.5.2-a",
                                             "7030-4.10-a",  "9148-2-a",     "PG-ENR-3",     "PG-ENR-4",
                                             "PG-REV-1"};
  EXPECT_EQ(occurrences(html_, "<tr class=\"requirement\""), expected.size());
  std::size_t previous = 0;
  for (const auto& requirement : expected) {
    const auto at = html_.find("data-requirement=\"" + requirement + "\"");
    ASSERT_NE(at, std::string::npos) << requirement;
    EXPECT_GT(at, previous) << requirement << " out of order";
    previous = at;
  }
}

TEST_F(HtmlTest, CellsShowTheWorstVerdictPerProfileAndLinkTheScenarios) {
  const auto pg = matrix_row(html_, "PG-ENR-3");
  ASSERT_FALSE(pg.empty());
  EXPECT_NE(pg.find("<td class=\"cell verdict-pass\" data-profile=\"rfc7030\" data-verdict=\"pass\"><a "
                    "class=\"scenario-link verdict-pass\" href=\"#scenario-enroll-revoked-refused--rfc7030\""),
            std::string::npos)
      << pg;
  EXPECT_NE(pg.find("<td class=\"cell verdict-fail\" data-profile=\"protocol-gateway\" data-verdict=\"fail\"><a "
                    "class=\"scenario-link verdict-fail\" href=\"#scenario-enroll-revoked-refused--protocol-gateway\""),
            std::string::npos)
      << pg;
  EXPECT_NE(pg.find("enroll-revoked-refused</a> <span class=\"tag verdict-fail\">fail</span></td>"), std::string::npos) << pg;
  const auto coaps = matrix_row(html_, "9148-2-a");
  EXPECT_NE(coaps.find("<td class=\"cell verdict-error\" data-profile=\"rfc7030\" data-verdict=\"error\">"),
            std::string::npos)
      << coaps;
  EXPECT_NE(coaps.find("<td class=\"cell verdict-none\" data-profile=\"protocol-gateway\">"), std::string::npos);
  const auto skip = matrix_row(html_, "7030-4.4.2-a");
  EXPECT_NE(skip.find("verdict-skip"), std::string::npos) << skip;
  const auto repeated = matrix_row(html_, "7030-4.2.1-a");
  EXPECT_NE(repeated.find("href=\"#scenario-enroll-basic--rep-0\""), std::string::npos) << repeated;
  EXPECT_NE(repeated.find("href=\"#scenario-enroll-basic--rep-1\" title=\"pass: title of enroll-basic\">enroll-basic "
                          "#2</a>"),
            std::string::npos)
      << repeated;

  // Every link has its target.
  const std::regex link("href=\"#([^\"]+)\"");
  std::size_t links = 0;
  for (std::sregex_iterator it(html_.begin(), html_.end(), link), end; it != end; ++it, ++links) {
    EXPECT_NE(html_.find("id=\"" + (*it)[1].str() + "\""), std::string::npos) << (*it)[1];
  }
  EXPECT_EQ(links, 17u);  // one per requirement of each of the 13 runs
}

// warn, info, xfail and xpass are cells of their own, named in the cell and not only coloured.
TEST_F(HtmlTest, MatrixShowsEveryLevelDistinctly) {
  const auto cell = [&](const std::string& requirement, const std::string& profile) {
    const auto row = matrix_row(html_, requirement);
    const auto start = row.find("data-profile=\"" + profile + "\"");
    if (start == std::string::npos) return std::string();
    return row.substr(row.rfind("<td", start), row.find("</td>", start) - row.rfind("<td", start));
  };
  const std::vector<std::tuple<std::string, std::string, std::string>> expected = {
      {"7030-4.2.3-b", "rfc7030", "warn"},          {"7030-4.5.2-a", "rfc7030", "info"},
      {"7030-4.2.1-a", "protocol-gateway", "xfail"}, {"PG-ENR-4", "protocol-gateway", "xpass"},
      {"7030-4.4.1-a", "protocol-gateway", "skip"},  {"PG-REV-1", "protocol-gateway", "pass"}};
  for (const auto& [requirement, profile, verdict] : expected) {
    const auto text = cell(requirement, profile);
    EXPECT_EQ(text.rfind("<td class=\"cell verdict-" + verdict + "\" data-profile=\"" + profile + "\" data-verdict=\"" +
                             verdict + "\">",
                         0),
              0u)
        << requirement << " " << profile << ": " << text;
    if (verdict != "pass") {
      EXPECT_NE(text.find("<span class=\"tag verdict-" + verdict + "\">" + verdict + "</span>"), std::string::npos) << text;
    } else {
      EXPECT_EQ(text.find("class=\"tag"), std::string::npos) << text;
    }
  }
  // The worst of a cell's runs: two passes and nothing else stay a pass; add a warning and the
  // cell warns; an xpass outranks it.
  auto run = sample_run();
  run.scenarios[6].verdict = Verdict::warn;
  EXPECT_NE(matrix_row(html_report(run), "7030-4.2.1-a").find("<td class=\"cell verdict-warn\" data-profile=\"rfc7030\""),
            std::string::npos);
  run.scenarios[5].verdict = Verdict::xpass;
  EXPECT_NE(matrix_row(html_report(run), "7030-4.2.1-a").find("<td class=\"cell verdict-xpass\" data-profile=\"rfc7030\""),
            std::string::npos);
  // Every level has its own colour rule.
  for (const auto verdict : all_verdicts()) {
    const std::string name = to_string(verdict);
    EXPECT_NE(html_.find("td.verdict-" + name + " { background: var(--" + name + "-bg); color: var(--" + name + "); }"),
              std::string::npos)
        << name;
    EXPECT_NE(html_.find("section.scenario.verdict-" + name + " { border-left-color: var(--" + name + "); }"),
              std::string::npos)
        << name;
  }
}

// A requirement's cell is judged by the checks that speak for it: a failing check that names a row
// its scenario does not list (the 401-challenge check) fails that row, not the scenario's own rows.
TEST(HtmlReportTest, CellsAreJudgedByTheChecksThatSpeakForTheirRequirement) {
  conformance::RunResult run;
  conformance::ScenarioResult s;
  s.id = "linking";
  s.title = "linking";
  s.profile = "rfc7030";
  s.spec = "RFC 7030";
  s.section = "3.5";
  s.requirements = {"7030-3.5-b", "7030-3.5-d"};
  s.verdict = Verdict::fail;
  conformance::StepResult step;
  step.verdict = Verdict::fail;
  step.checks = {{"status 401, expected 4xx", Verdict::pass, "7030-3.5-b", "MUST"},
                 {"the 401 carries a WWW-Authenticate challenge", Verdict::fail, "7030-3.2.3-a", "MUST"},
                 {"captured x", Verdict::pass, "", ""}};
  s.steps = {step};
  run.scenarios = {s};
  const auto html = html_report(run);
  EXPECT_NE(matrix_row(html, "7030-3.2.3-a").find("data-verdict=\"fail\""), std::string::npos) << matrix_row(html, "7030-3.2.3-a");
  EXPECT_NE(matrix_row(html, "7030-3.5-b").find("data-verdict=\"pass\""), std::string::npos) << matrix_row(html, "7030-3.5-b");
  EXPECT_NE(matrix_row(html, "7030-3.5-d").find("data-verdict=\"pass\""), std::string::npos) << matrix_row(html, "7030-3.5-d");
  // A scenario-wide failure (a check on the first row) speaks for every row the scenario lists.
  run.scenarios[0].steps[0].checks[0].verdict = Verdict::fail;
  const auto again = html_report(run);
  EXPECT_NE(matrix_row(again, "7030-3.5-d").find("data-verdict=\"fail\""), std::string::npos) << matrix_row(again, "7030-3.5-d");
}

TEST(HtmlReportTest, RequirementRowsCarryTheCatalogsWords) {
  auto run = sample_run();
  run.requirement_texts = {{"7030-4.2.1-a", "MUST: the enroll body is <PKCS#10>"}};
  const auto html = html_report(run);
  EXPECT_NE(matrix_row(html, "7030-4.2.1-a").find("<div class=\"requirement-text\">MUST: the enroll body is &lt;PKCS#10&gt;</div>"),
            std::string::npos)
      << matrix_row(html, "7030-4.2.1-a");
  EXPECT_EQ(matrix_row(html, "PG-ENR-4").find("requirement-text"), std::string::npos) << "no text, no empty box";
}

TEST_F(HtmlTest, HeaderShowsTheSeedTheSkipsFirstAndEveryCount) {
  EXPECT_NE(html_.find("<span id=\"seed\" data-seed=\"1234\">seed 1234 (replay with --seed 1234)</span>"),
            std::string::npos);
  EXPECT_NE(html_.find(" &middot; baseline <span class=\"mono\" id=\"baseline\">ci/baseline.txt</span>"), std::string::npos);
  EXPECT_EQ(html_.find("id=\"strict\""), std::string::npos);
  const auto skips = html_.find("<p id=\"skip-summary\">SKIPPED 3 scenario runs (1 partially) \xE2\x80\x94 the target "
                                "lacks: an identity for role &#39;device-revoked&#39; (1), control &#39;revoke&#39; (1)");
  ASSERT_NE(skips, std::string::npos);
  EXPECT_LT(skips, html_.find("id=\"count-total\""));
  const std::vector<std::pair<std::string, int>> counts = {{"pass", 5}, {"info", 1}, {"warn", 1}, {"skip", 2},
                                                           {"xfail", 1}, {"xpass", 1}, {"fail", 1}, {"error", 1}};
  for (const auto& [verdict, n] : counts) {
    EXPECT_NE(html_.find("<span class=\"count verdict-" + verdict + "\" id=\"count-" + verdict + "\">" +
                         std::to_string(n) + " " + verdict + "</span>"),
              std::string::npos)
        << verdict;
  }
  EXPECT_NE(html_.find("id=\"count-partially-skipped\">1 partially skipped</span>"), std::string::npos);
  auto run = sample_run();
  run.scenarios = {run.scenarios[0], run.scenarios[7]};
  EXPECT_NE(html_report(run).find("id=\"overall\">PASSED<"), std::string::npos);
  run.strict = true;
  const auto strict = html_report(run);
  EXPECT_NE(strict.find("id=\"overall\">FAILED<"), std::string::npos);
  EXPECT_NE(strict.find("<span id=\"strict\">--strict: warn and xpass count as failures</span>"), std::string::npos);
}

TEST_F(HtmlTest, ChecksCarryTheirLevelAndWarningsOpenWithTheirEvidence) {
  EXPECT_NE(html_.find("<li class=\"check verdict-warn\" data-verdict=\"warn\" data-level=\"SHOULD\"><span class=\"badge "
                       "verdict-warn\">warn</span><span class=\"mono\">Retry-After header present</span> <span "
                       "class=\"tags\">7030-4.2.3-b \xC2\xB7 SHOULD</span></li>"),
            std::string::npos);
  EXPECT_NE(html_.find("<li class=\"check verdict-info\" data-verdict=\"info\" data-level=\"MAY\"><span class=\"badge "
                       "verdict-info\">info</span><span class=\"mono\">csrattrs offered: 204 No Content</span>"),
            std::string::npos);
  const auto section = [&](const std::string& id) {
    const auto start = html_.find("id=\"scenario-" + id + "\"");
    if (start == std::string::npos) return std::string();
    return html_.substr(start, html_.find("</section>", start) - start);
  };
  const auto warn = section("enroll-retry-after");
  EXPECT_NE(warn.find("<details open>"), std::string::npos) << warn;
  EXPECT_NE(warn.find("<li class=\"step verdict-warn\">"), std::string::npos);
  EXPECT_NE(warn.find("<details class=\"exchange\" open><summary>exchange (https TLSv1.3 as device-pending)"),
            std::string::npos)
      << warn;
  EXPECT_NE(warn.find("unique <span class=\"mono\">u1234-7</span>"), std::string::npos);
  const auto xpass = section("pg-enr-4-last-issued-only");
  EXPECT_NE(xpass.find("<details open>"), std::string::npos);
  EXPECT_NE(xpass.find("<p class=\"baseline\">baseline: PG-ENR-4 is not implemented before firmware 2.3 &mdash; listed "
                       "as failing, but it passed: the baseline entry is stale</p>"),
            std::string::npos)
      << xpass;
  const auto xfail = section("enroll-wrong-content-type");
  EXPECT_EQ(xfail.find("<details open>"), std::string::npos);  // known: one click away
  EXPECT_NE(xfail.find("<p class=\"baseline\">baseline: vendor bug 12: answers 200 to text/plain</p>"), std::string::npos);
  EXPECT_EQ(section("csrattrs-optional").find("<details open>"), std::string::npos);
  EXPECT_NE(section("revoked-at-ca-then-refused").find("<span class=\"skipped-steps\">1 of 2 steps skipped</span>"),
            std::string::npos);
}

TEST_F(HtmlTest, ScenarioSectionsCarryStableHooks) {
  EXPECT_EQ(occurrences(html_, "<section class=\"scenario "), 13u);
  EXPECT_NE(html_.find("<section class=\"scenario verdict-fail\" id=\"scenario-enroll-revoked-refused--protocol-gateway\" "
                       "data-verdict=\"fail\" data-requirements=\"PG-ENR-3\" data-profile=\"protocol-gateway\""),
            std::string::npos);
  EXPECT_NE(html_.find("<section class=\"scenario verdict-pass\" id=\"scenario-cacerts-basic\" data-verdict=\"pass\" "
                       "data-requirements=\"7030-4.1.2-a 7030-4.1.3-a\""),
            std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-serverkeygen-encrypted\" data-verdict=\"skip\""), std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-coaps-cacerts\" data-verdict=\"error\""), std::string::npos);
  for (const char* verdict : {"pass", "info", "warn", "skip", "xfail", "xpass", "fail", "error"}) {
    EXPECT_NE(html_.find(std::string("<input type=\"checkbox\" class=\"filter-verdict\" value=\"") + verdict +
                         "\" checked>"),
              std::string::npos)
        << verdict;
  }
  EXPECT_NE(html_.find("<input type=\"search\" id=\"filter-text\""), std::string::npos);
  EXPECT_NE(html_.find("<span id=\"filter-count\">"), std::string::npos);
  EXPECT_NE(html_.find("<span class=\"count verdict-fail\" id=\"count-fail\">1 fail</span>"), std::string::npos);
  EXPECT_NE(html_.find("<span class=\"count total\" id=\"count-total\">13 scenarios</span>"), std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-enroll-retry-after\" data-verdict=\"warn\""), std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-csrattrs-optional\" data-verdict=\"info\""), std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-enroll-wrong-content-type\" data-verdict=\"xfail\""), std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-pg-enr-4-last-issued-only\" data-verdict=\"xpass\""), std::string::npos);
  EXPECT_NE(html_.find("id=\"overall\">FAILED<"), std::string::npos);
  EXPECT_NE(html_.find("<td>PG-ENR-4 polarity</td><td>documented</td>"), std::string::npos);
}

TEST_F(HtmlTest, FailuresShowTheirEvidenceInPre) {
  EXPECT_NE(html_.find("<pre class=\"request\">POST /.well-known/est/simpleenroll HTTP/1.1\nContent-Type: "
                       "application/pkcs10\n\nMIIC&lt;csr&gt;&amp;amp;</pre>"),
            std::string::npos);
  EXPECT_NE(html_.find("<pre class=\"response\">HTTP/1.1 200 OK\n"), std::string::npos);
  EXPECT_NE(html_.find("<pre class=\"decoded\">Certificate:"), std::string::npos);
  EXPECT_NE(html_.find("<details class=\"exchange\" open>"), std::string::npos);  // the failing step's
  EXPECT_NE(html_.find("<span class=\"mono\">status 200 == 403</span> <span class=\"tags\">PG-ENR-3 \xC2\xB7 MUST</span></li>"),
            std::string::npos);
  EXPECT_NE(html_.find("<p class=\"message\">encrypted key delivery is not implemented (501)</p>"), std::string::npos);
}

TEST_F(HtmlTest, EscapesEvidenceAndTitles) {
  EXPECT_EQ(html_.find("<script>alert"), std::string::npos);
  EXPECT_NE(html_.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"), std::string::npos);
  EXPECT_EQ(occurrences(html_, "<script"), 1u);  // only the report's own
  EXPECT_NE(html_.find("Revoked &quot;device&quot; &lt;refused&gt; &amp; logged \xE2\x80\x94 Gr\xC3\xBC\xC3\x9F" "e \xC3\x9C" "BER"),
            std::string::npos);
  EXPECT_NE(html_.find("\\x1B[31mred"), std::string::npos);
  for (const char c : html_) {
    const auto byte = static_cast<unsigned char>(c);
    EXPECT_FALSE(byte < 0x20 && c != '\n' && c != '\t') << "control byte " << int(byte);
  }
  EXPECT_EQ(valid_utf8(html_), html_);
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST_F(HtmlTest, SelfContained) {
  EXPECT_EQ(html_.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html_.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(html_.find("<style>"), std::string::npos);
  for (const char* external : {" src=", "<link", "@import", "url(", "http://", "https://"}) {
    EXPECT_EQ(html_.find(external), std::string::npos) << external;
  }
}

TEST_F(HtmlTest, TagsBalance) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 is not installed";
  const auto dir = temp_dir("html-tags");
  ASSERT_TRUE(write_html(sample_run(), dir / "report.html").ok());
  const std::string script = R"py(
import sys
from html.parser import HTMLParser
VOID = {'meta', 'input', 'br', 'hr', 'img', 'link'}
class Check(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == 'id':
                assert value not in self.ids, 'duplicate id ' + value
                self.ids.add(value)
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))
    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1][0] == tag, 'unexpected </%s> at %s, open: %s' % (tag, self.getpos(), self.stack[-3:])
        self.stack.pop()
c = Check()
c.feed(open(sys.argv[1], encoding='utf-8').read())
c.close()
assert not c.stack, 'unclosed: %s' % c.stack
print('ok')
)py";
  ASSERT_TRUE(write_text_file(dir / "check.py", script).ok());
  const auto result =
      run_command("/usr/bin/python3 '" + (dir / "check.py").string() + "' '" + (dir / "report.html").string() + "'");
  EXPECT_EQ(result.status, 0) << result.output;
  std::filesystem::remove_all(dir);
}

// The inline script against a small stand-in for the DOM in node: the verdict boxes and the text
// box hide exactly the sections (style.display = 'none') and matrix rows that do not match.
TEST_F(HtmlTest, FiltersHideSectionsThatDoNotMatch) {
  if (!have_tool("node")) GTEST_SKIP() << "node is not installed";
  const auto dir = temp_dir("html-js");
  ASSERT_TRUE(write_html(sample_run(), dir / "report.html").ok());
  const std::string script = R"js(
const fs = require('fs');
const html = fs.readFileSync(process.argv[2], 'utf8');
const code = html.match(/<script>([\s\S]*?)<\/script>/)[1];
const unescape = s => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
function element(tag) {
  const attrs = {};
  const re = /([a-z-]+)="([^"]*)"/g;
  let m;
  while ((m = re.exec(tag))) attrs[m[1]] = unescape(m[2]);
  const listeners = {};
  return { attrs, style: { display: '' }, listeners, value: attrs.value || '', checked: / checked[ >]/.test(tag),
           textContent: '', id: attrs.id,
           getAttribute: n => (n in attrs ? attrs[n] : null),
           addEventListener: (type, f) => { listeners[type] = f; },
           classList: { contains: c => (attrs.class || '').split(' ').includes(c) },
           querySelector: () => null, scrollIntoView: () => {} };
}
const all = re => Array.from(html.matchAll(re), m => element(m[0]));
const sections = all(/<section class="scenario[^>]*>/g);
const rows = all(/<tr class="requirement"[^>]*>/g);
const boxes = all(/<input type="checkbox" class="filter-verdict"[^>]*>/g);
const text = all(/<input type="search" id="filter-text"[^>]*>/g)[0];
const count = element('<span id="filter-count">');
const byId = { 'filter-text': text, 'filter-count': count };
sections.forEach(s => { byId[s.id] = s; });
global.document = {
  querySelectorAll: sel => ({ 'input.filter-verdict': boxes, 'section.scenario': sections, '#matrix tbody tr': rows })[sel],
  getElementById: id => byId[id] || null,
};
global.location = { hash: '' };
global.window = { addEventListener: () => {} };
new Function(code)();
const shown = () => sections.filter(s => s.style.display !== 'none').map(s => s.id).join(' ');
const check = (what, got, want) => { if (got !== want) { console.log(what + ': got "' + got + '", want "' + want + '"'); process.exitCode = 1; } };
check('all', sections.filter(s => s.style.display === 'none').length, 0);
check('count', count.textContent, '13 of 13 scenarios shown');
check('boxes', boxes.map(b => b.value).join(' '), 'pass info warn skip xfail xpass fail error');
const only = verdict => {
  boxes.forEach(b => { b.checked = b.value === verdict; });
  boxes[0].listeners.change();
  return shown();
};
check('only warn', only('warn'), 'scenario-enroll-retry-after');
check('only info', only('info'), 'scenario-csrattrs-optional');
check('only xfail', only('xfail'), 'scenario-enroll-wrong-content-type');
check('only xpass', only('xpass'), 'scenario-pg-enr-4-last-issued-only');
check('only skip', only('skip'), 'scenario-serverkeygen-encrypted scenario-serverkeygen-revoked-role');
boxes.forEach(b => { b.checked = b.value !== 'pass'; });
boxes[0].listeners.change();
check('no pass', shown(), 'scenario-enroll-revoked-refused--protocol-gateway scenario-serverkeygen-encrypted scenario-coaps-cacerts ' +
      'scenario-enroll-retry-after scenario-csrattrs-optional scenario-enroll-wrong-content-type scenario-pg-enr-4-last-issued-only ' +
      'scenario-serverkeygen-revoked-role');
boxes.forEach(b => { b.checked = true; });
text.value = 'PG-ENR-3';
text.listeners.input();
check('text', shown(), 'scenario-enroll-revoked-refused--protocol-gateway scenario-enroll-revoked-refused--rfc7030');
check('rows', rows.filter(r => r.style.display !== 'none').map(r => r.attrs['data-requirement']).join(' '), 'PG-ENR-3');
text.value = '  7030-4.2.1  BASIC ';
text.listeners.input();
check('words', shown(), 'scenario-enroll-basic--rep-0 scenario-enroll-basic--rep-1');
check('count', count.textContent, '2 of 13 scenarios shown');
text.value = 'device" <refused';
text.listeners.input();
check('escaped title', shown(), 'scenario-enroll-revoked-refused--protocol-gateway');
text.value = '\u00fcber';  // the title says "\u00dcBER": non-ASCII is lowered by the script
text.listeners.input();
check('non-ASCII', shown(), 'scenario-enroll-revoked-refused--protocol-gateway');
if (!process.exitCode) console.log('ok');
)js";
  ASSERT_TRUE(write_text_file(dir / "check.js", script).ok());
  const auto result = run_command("node '" + (dir / "check.js").string() + "' '" + (dir / "report.html").string() + "'");
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_EQ(result.output, "ok\n");
  std::filesystem::remove_all(dir);
}

TEST(HtmlReportTest, ScenariosWithoutRequirementsGetARowAndAnEmptyRunWorks) {
  auto run = sample_run();
  run.scenarios[0].requirements.clear();
  const auto html = html_report(run);
  EXPECT_NE(html.find("data-requirement=\"(no requirement)\""), std::string::npos);
  EXPECT_GT(html.find("data-requirement=\"(no requirement)\""), html.find("data-requirement=\"PG-ENR-3\""));
  const auto empty = html_report(conformance::RunResult{});
  EXPECT_NE(empty.find("<table id=\"matrix\">"), std::string::npos);
  EXPECT_NE(empty.find("id=\"overall\">PASSED<"), std::string::npos);
}

// The coverage table tells apart: judged (the verdict), not run (a scenario names the row but this
// run did not judge it), not covered, and not applicable (client-only or untestable, with why).
TEST(HtmlReportTest, CoverageTableTellsNotRunNotCoveredAndNotApplicableApart) {
  auto run = sample_run();
  using conformance::CoverageRow;
  using conformance::CoverageState;
  auto row = [](std::string id, CoverageState state, std::vector<std::string> scenarios, std::string reason = "") {
    CoverageRow r;
    r.id = std::move(id);
    r.spec = "RFC 7030";
    r.level = "MUST";
    r.verdict_level = "fail";
    r.side = state == CoverageState::client_side ? "client" : "server";
    r.text = "text of " + r.id;
    r.state = state;
    r.reason = std::move(reason);
    r.scenarios = std::move(scenarios);
    return r;
  };
  run.coverage.rows = {row("7030-4.1.2-a", CoverageState::covered, {"cacerts-basic"}),
                       row("PG-ENR-3", CoverageState::covered, {"enroll-revoked-refused"}),
                       row("7030-4.4-b", CoverageState::covered, {"a-scenario-not-in-this-run"}),
                       row("7030-4.5-d", CoverageState::not_covered, {}),
                       row("7030-4.2-c", CoverageState::client_side, {}),
                       row("7030-3.5-g", CoverageState::untestable, {}, "the back end is <invisible>")};
  conformance::FieldBugCoverage bug;
  bug.id = "FB-26";
  bug.name = "revoked-client-cert-accepted";
  bug.requirements = {"7030-3.3.2-b"};
  bug.scenarios = {"enroll-revoked-refused"};
  run.coverage.field_bugs = {bug};
  const auto html = html_report(run);
  auto coverage_row = [&](const std::string& id) {
    const auto table = html.find("<table id=\"coverage-matrix\">");
    const auto at = html.find("<th class=\"mono\">" + id + "<", table);
    if (table == std::string::npos || at == std::string::npos) return std::string();
    const auto start = html.rfind("<tr", at);
    return html.substr(start, html.find("</tr>", at) - start);
  };
  EXPECT_NE(coverage_row("7030-4.1.2-a").find("data-state=\"pass\""), std::string::npos) << coverage_row("7030-4.1.2-a");
  EXPECT_NE(coverage_row("7030-4.1.2-a").find("href=\"#"), std::string::npos) << "a judged row links its scenario";
  EXPECT_NE(coverage_row("PG-ENR-3").find("data-state=\"fail\""), std::string::npos) << coverage_row("PG-ENR-3");
  EXPECT_NE(coverage_row("7030-4.4-b").find("data-state=\"not run\""), std::string::npos) << coverage_row("7030-4.4-b");
  EXPECT_NE(coverage_row("7030-4.5-d").find("data-state=\"not covered\""), std::string::npos);
  EXPECT_NE(coverage_row("7030-4.2-c").find("data-state=\"not applicable\""), std::string::npos);
  EXPECT_NE(coverage_row("7030-4.2-c").find("binds EST clients only"), std::string::npos);
  EXPECT_NE(coverage_row("7030-3.5-g").find("data-state=\"not applicable\""), std::string::npos);
  EXPECT_NE(coverage_row("7030-3.5-g").find("the back end is &lt;invisible&gt;"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"coverage-count\">not run 1</span>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"coverage-count\">not applicable 2</span>"), std::string::npos);
  const auto bugs = html.find("<table id=\"field-bug-matrix\">");
  ASSERT_NE(bugs, std::string::npos);
  EXPECT_NE(html.find("FB-26 revoked-client-cert-accepted", bugs), std::string::npos);
  EXPECT_NE(html.find("data-state=\"fail\"", bugs), std::string::npos) << "the bug's scenario failed in this run";
  run.coverage = {};
  EXPECT_EQ(html_report(run).find("<table id=\"coverage-matrix\">"), std::string::npos) << "no catalog, no table";
}

}  // namespace
}  // namespace estlab::reports::testing
