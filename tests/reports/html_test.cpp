#include "estlab/reports/html.hpp"

#include <gtest/gtest.h>

#include <regex>

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
  const std::vector<std::string> expected = {"7030-4.1.2-a", "7030-4.1.3-a", "7030-4.2.1-a", "7030-4.4.2-a",
                                             "7030-4.10-a",  "9148-2-a",     "PG-ENR-3"};
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
  EXPECT_NE(pg.find("<td class=\"cell verdict-pass\" data-profile=\"rfc7030\"><a class=\"scenario-link verdict-pass\" "
                    "href=\"#scenario-enroll-revoked-refused--rfc7030\""),
            std::string::npos)
      << pg;
  EXPECT_NE(pg.find("<td class=\"cell verdict-fail\" data-profile=\"protocol-gateway\"><a class=\"scenario-link "
                    "verdict-fail\" href=\"#scenario-enroll-revoked-refused--protocol-gateway\""),
            std::string::npos)
      << pg;
  const auto coaps = matrix_row(html_, "9148-2-a");
  EXPECT_NE(coaps.find("<td class=\"cell verdict-error\" data-profile=\"rfc7030\">"), std::string::npos) << coaps;
  EXPECT_NE(coaps.find("<td class=\"cell verdict-none\" data-profile=\"protocol-gateway\">"), std::string::npos);
  const auto skip = matrix_row(html_, "7030-4.4.2-a");
  EXPECT_NE(skip.find("verdict-skip"), std::string::npos) << skip;
  const auto repeated = matrix_row(html_, "7030-4.2.1-a");
  EXPECT_NE(repeated.find("href=\"#scenario-enroll-basic--rep-0\""), std::string::npos) << repeated;
  EXPECT_NE(repeated.find("href=\"#scenario-enroll-basic--rep-1\" title=\"pass: title of enroll-basic\">enroll-basic "
                          "[rep 1]</a>"),
            std::string::npos)
      << repeated;

  // Every link has its target.
  const std::regex link("href=\"#([^\"]+)\"");
  std::size_t links = 0;
  for (std::sregex_iterator it(html_.begin(), html_.end(), link), end; it != end; ++it, ++links) {
    EXPECT_NE(html_.find("id=\"" + (*it)[1].str() + "\""), std::string::npos) << (*it)[1];
  }
  EXPECT_EQ(links, 10u);
}

TEST_F(HtmlTest, ScenarioSectionsCarryStableHooks) {
  EXPECT_EQ(occurrences(html_, "<section class=\"scenario "), 7u);
  EXPECT_NE(html_.find("<section class=\"scenario verdict-fail\" id=\"scenario-enroll-revoked-refused--protocol-gateway\" "
                       "data-verdict=\"fail\" data-requirements=\"PG-ENR-3\" data-profile=\"protocol-gateway\""),
            std::string::npos);
  EXPECT_NE(html_.find("<section class=\"scenario verdict-pass\" id=\"scenario-cacerts-basic\" data-verdict=\"pass\" "
                       "data-requirements=\"7030-4.1.2-a 7030-4.1.3-a\""),
            std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-serverkeygen-encrypted\" data-verdict=\"skip\""), std::string::npos);
  EXPECT_NE(html_.find("id=\"scenario-coaps-cacerts\" data-verdict=\"error\""), std::string::npos);
  for (const char* verdict : {"pass", "fail", "skip", "error"}) {
    EXPECT_NE(html_.find(std::string("<input type=\"checkbox\" class=\"filter-verdict\" value=\"") + verdict +
                         "\" checked>"),
              std::string::npos)
        << verdict;
  }
  EXPECT_NE(html_.find("<input type=\"search\" id=\"filter-text\""), std::string::npos);
  EXPECT_NE(html_.find("<span id=\"filter-count\">"), std::string::npos);
  EXPECT_NE(html_.find("<span class=\"count verdict-fail\" id=\"count-fail\">1 fail</span>"), std::string::npos);
  EXPECT_NE(html_.find("<span class=\"count total\" id=\"count-total\">7 scenarios</span>"), std::string::npos);
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
  EXPECT_NE(html_.find("<li class=\"mono\">status 200 == 403</li>"), std::string::npos);
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
check('count', count.textContent, '7 of 7 scenarios shown');
boxes.find(b => b.value === 'pass').checked = false;
boxes[0].listeners.change();
check('no pass', shown(), 'scenario-enroll-revoked-refused--protocol-gateway scenario-serverkeygen-encrypted scenario-coaps-cacerts');
boxes.find(b => b.value === 'pass').checked = true;
text.value = 'PG-ENR';
text.listeners.input();
check('text', shown(), 'scenario-enroll-revoked-refused--protocol-gateway scenario-enroll-revoked-refused--rfc7030');
check('rows', rows.filter(r => r.style.display !== 'none').map(r => r.attrs['data-requirement']).join(' '), 'PG-ENR-3');
text.value = '  7030-4.2.1  BASIC ';
text.listeners.input();
check('words', shown(), 'scenario-enroll-basic--rep-0 scenario-enroll-basic--rep-1');
check('count', count.textContent, '2 of 7 scenarios shown');
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

}  // namespace
}  // namespace estlab::reports::testing
