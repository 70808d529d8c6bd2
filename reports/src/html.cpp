#include "estlab/reports/html.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "estlab/reports/text.hpp"

#include "estlab/core/text.hpp"

namespace estlab::reports {

using conformance::RunResult;
using conformance::ScenarioResult;
using conformance::StepResult;
using conformance::Verdict;

namespace {

constexpr const char* kNoRequirement = "(no requirement)";

const char* kStyle = R"css(
:root { --pass: #1e7b34; --pass-bg: #e3f4e6; --fail: #b3261e; --fail-bg: #fde7e5;
        --skip: #5a5f66; --skip-bg: #eceef1; --error: #a35200; --error-bg: #fff0dc;
        --info: #0b6e8a; --info-bg: #e2f3f8; --warn: #8a6100; --warn-bg: #fff6cc;
        --xfail: #6b5a8e; --xfail-bg: #eee9f7; --xpass: #b3005f; --xpass-bg: #fde4f1; --line: #d0d4da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; padding: 1rem 1.5rem;
       max-width: 1400px; color: #1b1f24; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: .5rem .7rem; overflow-x: auto;
      white-space: pre-wrap; word-break: break-all; margin: .2rem 0 .6rem; }
.meta { color: #555; margin: 0 0 .6rem; }
.counts { display: flex; gap: .5rem; flex-wrap: wrap; margin: .4rem 0; }
.count { padding: .25rem .7rem; border-radius: 1rem; font-weight: 600; }
.overall { font-weight: 700; padding: .25rem .7rem; border-radius: .3rem; }
.verdict-pass.count, .verdict-pass.overall, .badge.verdict-pass, td.verdict-pass { background: var(--pass-bg); color: var(--pass); }
.verdict-fail.count, .verdict-fail.overall, .badge.verdict-fail, td.verdict-fail { background: var(--fail-bg); color: var(--fail); }
.verdict-skip.count, .badge.verdict-skip, td.verdict-skip { background: var(--skip-bg); color: var(--skip); }
.verdict-error.count, .badge.verdict-error, td.verdict-error { background: var(--error-bg); color: var(--error); }
.verdict-info.count, .badge.verdict-info, td.verdict-info { background: var(--info-bg); color: var(--info); }
.verdict-warn.count, .badge.verdict-warn, td.verdict-warn { background: var(--warn-bg); color: var(--warn); }
.verdict-xfail.count, .badge.verdict-xfail, td.verdict-xfail { background: var(--xfail-bg); color: var(--xfail); }
.verdict-xpass.count, .badge.verdict-xpass, td.verdict-xpass { background: var(--xpass-bg); color: var(--xpass); }
td.verdict-warn, td.verdict-xpass { font-weight: 600; }
td.verdict-xfail { font-style: italic; }
#matrix .tag { font-size: 11px; font-weight: 700; text-transform: uppercase; margin-right: .4rem; }
#skip-summary { font-weight: 600; color: var(--skip); }
.count.total { background: #e8ecf1; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f2f5; }
#matrix td.cell a { color: inherit; margin-right: .4rem; white-space: nowrap; }
#matrix td.verdict-none { color: #aaa; }
#coverage-matrix, #field-bug-matrix { border-collapse: collapse; margin-bottom: 1rem; }
#coverage-matrix th, #coverage-matrix td, #field-bug-matrix th, #field-bug-matrix td { border: 1px solid #ddd; padding: .2rem .4rem; text-align: left; vertical-align: top; font-size: 12px; }
td.coverage-na { color: #888; }
td.coverage-uncovered { background: #fff4e5; color: #8a4b00; }
td.coverage-not-run { background: #eef2f7; color: #445; }
.coverage-count { margin-left: .4rem; font-weight: 600; }
#matrix .requirement-text { font-family: sans-serif; font-weight: normal; font-size: 11px; color: #555; max-width: 28rem; }
#readings td:first-child { font-family: ui-monospace, Menlo, Consolas, monospace; }
#filters { position: sticky; top: 0; background: #fff; padding: .5rem 0; border-bottom: 1px solid var(--line);
           display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; z-index: 1; }
#filter-text { width: 22rem; padding: .25rem .4rem; }
#filter-count { color: #555; }
section.scenario { border: 1px solid var(--line); border-left-width: 5px; border-radius: .3rem; margin: .4rem 0; }
section.scenario.verdict-pass { border-left-color: var(--pass); }
section.scenario.verdict-fail { border-left-color: var(--fail); }
section.scenario.verdict-skip { border-left-color: var(--skip); }
section.scenario.verdict-error { border-left-color: var(--error); }
section.scenario.verdict-info { border-left-color: var(--info); }
section.scenario.verdict-warn { border-left-color: var(--warn); }
section.scenario.verdict-xfail { border-left-color: var(--xfail); }
section.scenario.verdict-xpass { border-left-color: var(--xpass); }
section.scenario > details > summary { cursor: pointer; padding: .35rem .6rem; }
section.scenario > details > div { padding: 0 .8rem .6rem; }
.badge { display: inline-block; min-width: 3.4rem; text-align: center; border-radius: .25rem; font-weight: 700;
         font-size: 12px; padding: 0 .3rem; margin-right: .4rem; text-transform: uppercase; }
.title { color: #444; margin-left: .4rem; }
.tags { color: #666; font-size: 12px; margin-left: .4rem; }
.message { font-weight: 600; }
ol.steps { padding-left: 1.4rem; }
ol.steps > li { margin: .3rem 0; }
li.step.verdict-fail > .step-head, li.step.verdict-error > .step-head, li.step.verdict-warn > .step-head,
li.step.verdict-xpass > .step-head { font-weight: 600; }
ul.checks { margin: .2rem 0; padding-left: 1.2rem; list-style: none; }
ul.checks .badge { min-width: 2.8rem; font-size: 11px; }
)css";

// Filters by verdict (checkboxes) and by text (every word must occur in a scenario's id, title,
// requirements, profile or section); the matrix rows follow the text filter. Following a link to
// a scenario shows and opens it even when the filters hide it.
const char* kScript = R"js(
(function () {
  'use strict';
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input.filter-verdict'));
  var text = document.getElementById('filter-text');
  var count = document.getElementById('filter-count');
  var sections = Array.prototype.slice.call(document.querySelectorAll('section.scenario'));
  var rows = Array.prototype.slice.call(document.querySelectorAll('#matrix tbody tr'));
  function words() {
    return text.value.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
  }
  function matches(haystack, terms) {
    var lowered = haystack.toLowerCase();  // the writer lowers ASCII only
    return terms.every(function (w) { return lowered.indexOf(w) >= 0; });
  }
  function apply() {
    var wanted = {};
    boxes.forEach(function (b) { wanted[b.value] = b.checked; });
    var terms = words();
    var shown = 0;
    sections.forEach(function (s) {
      var ok = wanted[s.getAttribute('data-verdict')] === true && matches(s.getAttribute('data-search') || '', terms);
      s.style.display = ok ? '' : 'none';
      if (ok) shown++;
    });
    rows.forEach(function (r) {
      r.style.display = matches(r.getAttribute('data-search') || '', terms) ? '' : 'none';
    });
    count.textContent = shown + ' of ' + sections.length + ' scenarios shown';
  }
  function reveal() {
    var id;
    try { id = decodeURIComponent(location.hash.replace(/^#/, '')); } catch (e) { return; }
    var target = id ? document.getElementById(id) : null;
    if (target && target.classList.contains('scenario')) {
      target.style.display = '';
      var details = target.querySelector('details');
      if (details) details.open = true;
      target.scrollIntoView();
    }
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  text.addEventListener('input', apply);
  window.addEventListener('hashchange', reveal);
  apply();
  reveal();
})();
)js";

std::string anchor_part(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
    out += keep ? c : '_';
  }
  return out.empty() ? "_" : out;
}


// Stable, unique element ids: "scenario-ID", with "--PROFILE" when the ID ran under several
// profiles and "--rep-N" when it was repeated; a numeric suffix only if that still collides.
std::vector<std::string> scenario_anchors(const RunResult& run) {
  std::map<std::string, std::set<std::string>> profiles_of_id;
  std::map<std::pair<std::string, std::string>, std::size_t> runs_of_id_profile;
  for (const auto& scenario : run.scenarios) {
    profiles_of_id[scenario.id].insert(scenario.profile);
    ++runs_of_id_profile[{scenario.id, scenario.profile}];
  }
  std::vector<std::string> anchors;
  std::set<std::string> used;
  for (const auto& scenario : run.scenarios) {
    std::string anchor = "scenario-" + anchor_part(scenario.id);
    if (profiles_of_id[scenario.id].size() > 1) anchor += "--" + anchor_part(scenario.profile);
    if (runs_of_id_profile[{scenario.id, scenario.profile}] > 1) {
      anchor += "--rep-" + std::to_string(scenario.repetition);
    }
    std::string unique = anchor;
    for (std::size_t n = 2; used.count(unique) != 0; ++n) unique = anchor + "-" + std::to_string(n);
    used.insert(unique);
    anchors.push_back(unique);
  }
  return anchors;
}

class Html {
 public:
  Html& raw(std::string_view markup) {
    out_.append(markup);
    return *this;
  }
  Html& text(std::string_view content) {
    out_ += html_escape(content);
    return *this;
  }
  std::string take() && { return std::move(out_); }

 private:
  std::string out_;
};

std::string verdict_class(Verdict verdict) { return std::string("verdict-") + to_string(verdict); }

void write_header(Html& html, const RunResult& run) {
  html.raw("<header id=\"summary\">\n<h1>estlab conformance report</h1>\n<p class=\"meta\">target <strong>")
      .text(run.target.empty() ? "(unnamed)" : run.target)
      .raw("</strong> &middot; profiles ")
      .text(join(run_profiles(run), ", "))
      .raw(" &middot; started ")
      .text(run.started_at)
      .raw(" &middot; ")
      .text(seconds_text(run.elapsed_ms))
      .raw(" s &middot; estlab ")
      .text(run.estlab_version)
      .raw("</p>\n<p class=\"meta\"><span id=\"seed\" data-seed=\"")
      .text(std::to_string(run.seed))
      .raw("\">")
      .text(seed_text(run))
      .raw("</span>");
  if (run.strict) html.raw(" &middot; <span id=\"strict\">--strict: warn and xpass count as failures</span>");
  if (!run.baseline.empty()) html.raw(" &middot; baseline <span class=\"mono\" id=\"baseline\">").text(run.baseline).raw("</span>");
  // What was not judged comes first: a run that skipped half the catalog is not a pass.
  html.raw("</p>\n<p id=\"skip-summary\">").text(skip_summary_text(run)).raw("</p>\n<div class=\"counts\">");
  const bool passed = run_passed(run);
  html.raw("<span class=\"overall ")
      .raw(passed ? "verdict-pass" : "verdict-fail")
      .raw("\" id=\"overall\">")
      .raw(passed ? "PASSED" : "FAILED")
      .raw("</span><span class=\"count total\" id=\"count-total\">")
      .text(std::to_string(run.scenarios.size()))
      .raw(" scenarios</span>");
  for (const Verdict verdict : all_verdicts()) {
    html.raw("<span class=\"count ")
        .raw(verdict_class(verdict))
        .raw("\" id=\"count-")
        .raw(to_string(verdict))
        .raw("\">")
        .text(std::to_string(run.count(verdict)))
        .raw(" ")
        .raw(to_string(verdict))
        .raw("</span>");
  }
  html.raw("<span class=\"count verdict-skip\" id=\"count-partially-skipped\">")
      .text(std::to_string(run.partially_skipped()))
      .raw(" partially skipped</span>");
  html.raw("</div>\n</header>\n");

  if (!run.readings.empty()) {
    html.raw("<h2>Readings</h2>\n<p class=\"meta\">Where the specifications leave a choice, this run read them so:</p>\n"
             "<table id=\"readings\"><thead><tr><th>question</th><th>reading</th></tr></thead><tbody>\n");
    for (const auto& [name, value] : run.readings) {
      html.raw("<tr><td>").text(name).raw("</td><td>").text(value).raw("</td></tr>\n");
    }
    html.raw("</tbody></table>\n");
  }
}

// The verdict a scenario run gives one requirement: the worst of the checks that speak for it.
// A check speaks for the row it names; the scenario's first row is every unnamed check's default,
// so those speak for all the rows the scenario lists. A check that names a row the scenario does
// not list (the 401-challenge check, say) speaks for that row alone. Skips and baseline verdicts
// are the scenario's as a whole. nullopt: the run says nothing about the requirement.
std::optional<Verdict> verdict_for(const conformance::ScenarioResult& scenario, const std::string& requirement) {
  const auto& listed = scenario.requirements;
  const bool lists = std::find(listed.begin(), listed.end(), requirement) != listed.end();
  if (scenario.verdict == Verdict::skip || scenario.verdict == Verdict::xfail || scenario.verdict == Verdict::xpass ||
      scenario.verdict == Verdict::error)
    return lists ? std::optional<Verdict>(scenario.verdict) : std::nullopt;
  // A verdict no check explains (a result built by hand, or a step that failed before any check)
  // stays the scenario's.
  bool explained = scenario.verdict == Verdict::pass;
  for (const auto& step : scenario.steps)
    for (const auto& check : step.checks) explained |= check.verdict == scenario.verdict;
  if (!explained) return lists ? std::optional<Verdict>(scenario.verdict) : std::nullopt;
  const std::string scenario_wide = listed.empty() ? "" : listed.front();
  std::optional<Verdict> worst;
  for (const auto& step : scenario.steps)
    for (const auto& check : step.checks) {
      const bool speaks = check.requirement == requirement ||
                          (lists && (check.requirement.empty() || check.requirement == scenario_wide));
      if (speaks) worst = worst ? conformance::worse(*worst, check.verdict) : check.verdict;
    }
  if (!worst && lists) return scenario.verdict;
  return worst;
}

void write_matrix(Html& html, const RunResult& run, const std::vector<std::string>& anchors) {
  const auto profiles = run_profiles(run);
  // requirement -> indexes of the scenario results that check it
  std::map<std::string, std::vector<std::size_t>> by_requirement;
  for (std::size_t i = 0; i < run.scenarios.size(); ++i) {
    std::vector<std::string> requirements = run.scenarios[i].requirements;
    // Rows a check names although its scenario does not list them (the 401-challenge check, say).
    for (const auto& step : run.scenarios[i].steps)
      for (const auto& check : step.checks)
        if (!check.requirement.empty() && std::find(requirements.begin(), requirements.end(), check.requirement) == requirements.end())
          requirements.push_back(check.requirement);
    if (run.scenarios[i].requirements.empty()) {
      by_requirement[kNoRequirement].push_back(i);
      requirements.clear();
    }
    for (const auto& requirement : requirements) {
      auto& list = by_requirement[requirement];
      if (std::find(list.begin(), list.end(), i) == list.end()) list.push_back(i);
    }
  }
  std::vector<std::string> requirements;
  for (const auto& entry : by_requirement) {
    if (entry.first != kNoRequirement) requirements.push_back(entry.first);
  }
  std::sort(requirements.begin(), requirements.end(),
            [](const std::string& a, const std::string& b) { return natural_less(a, b); });
  if (by_requirement.count(kNoRequirement) != 0) requirements.push_back(kNoRequirement);

  html.raw("<h2>Requirements by profile</h2>\n<table id=\"matrix\">\n<thead><tr><th>requirement</th>");
  for (const auto& profile : profiles) html.raw("<th>").text(profile).raw("</th>");
  html.raw("</tr></thead>\n<tbody>\n");
  for (const auto& requirement : requirements) {
    const auto& indexes = by_requirement[requirement];
    std::string search = ascii_lowercase(requirement);
    for (const auto i : indexes) search += " " + ascii_lowercase(run.scenarios[i].id) + " " + ascii_lowercase(run.scenarios[i].title);
    html.raw("<tr class=\"requirement\" id=\"requirement-")
        .text(anchor_part(requirement))
        .raw("\" data-requirement=\"")
        .text(requirement)
        .raw("\" data-search=\"")
        .text(search)
        .raw("\"><th class=\"mono\">")
        .text(requirement);
    // The catalog's words beside the ID, so a reader needs no second document.
    if (auto text = run.requirement_texts.find(requirement); text != run.requirement_texts.end())
      html.raw("<div class=\"requirement-text\">").text(text->second).raw("</div>");
    html.raw("</th>");
    for (const auto& profile : profiles) {
      std::vector<std::size_t> here;
      for (const auto i : indexes) {
        if (run.scenarios[i].profile == profile) here.push_back(i);
      }
      if (here.empty()) {
        html.raw("<td class=\"cell verdict-none\" data-profile=\"").text(profile).raw("\">&ndash;</td>");
        continue;
      }
      auto cell_verdict = [&](std::size_t i) {
        return requirement == kNoRequirement ? run.scenarios[i].verdict : verdict_for(run.scenarios[i], requirement).value_or(Verdict::skip);
      };
      Verdict worst = cell_verdict(here.front());
      for (const auto i : here) worst = conformance::worse(worst, cell_verdict(i));
      html.raw("<td class=\"cell ")
          .raw(verdict_class(worst))
          .raw("\" data-profile=\"")
          .text(profile)
          .raw("\" data-verdict=\"")
          .raw(to_string(worst))
          .raw("\">");
      for (const auto i : here) {
        const auto& scenario = run.scenarios[i];
        const Verdict verdict = cell_verdict(i);
        const std::string label = scenario.id + repetition_suffix(scenario);
        html.raw("<a class=\"scenario-link ")
            .raw(verdict_class(verdict))
            .raw("\" href=\"#")
            .text(anchors[i])
            .raw("\" title=\"")
            .text(std::string(to_string(verdict)) + ": " + scenario.title +
                  (verdict == scenario.verdict ? "" : std::string(" (the scenario as a whole: ") + to_string(scenario.verdict) + ")"))
            .raw("\">")
            .text(label)
            .raw("</a> ");
        // Not only a colour: every level but pass is named in the cell.
        if (verdict != Verdict::pass) {
          html.raw("<span class=\"tag ")
              .raw(verdict_class(verdict))
              .raw("\">")
              .raw(to_string(verdict))
              .raw("</span>");
        }
      }
      html.raw("</td>");
    }
    html.raw("</tr>\n");
  }
  html.raw("</tbody>\n</table>\n<p class=\"meta\" id=\"matrix-legend\">a cell shows the worst of its runs "
           "(error &gt; fail &gt; xpass &gt; warn &gt; xfail &gt; info &gt; pass &gt; skip), each run judged by the checks that "
           "speak for the requirement:");
  for (const Verdict verdict : all_verdicts()) {
    html.raw(" <span class=\"badge ").raw(verdict_class(verdict)).raw("\">").raw(to_string(verdict)).raw("</span>");
  }
  html.raw("</p>\n");
}

// The whole catalog, not only what ran: a row judged in this run shows its verdict; a row a
// scenario names that this run did not judge is "not run"; a row no scenario names is "not
// covered"; client-only and untestable rows are "not applicable", with the catalog's reason.
void write_coverage(Html& html, const RunResult& run, const std::vector<std::string>& anchors) {
  if (run.coverage.empty()) return;
  using conformance::CoverageState;
  auto judged = [&](const std::vector<std::string>& scenario_ids, const std::string& requirement) {
    std::optional<Verdict> worst;
    std::vector<std::size_t> runs;
    for (std::size_t i = 0; i < run.scenarios.size(); ++i) {
      if (std::find(scenario_ids.begin(), scenario_ids.end(), run.scenarios[i].id) == scenario_ids.end()) continue;
      const auto verdict = requirement.empty() ? std::optional<Verdict>(run.scenarios[i].verdict) : verdict_for(run.scenarios[i], requirement);
      if (!verdict || *verdict == Verdict::skip) continue;
      worst = worst ? conformance::worse(*worst, *verdict) : *verdict;
      runs.push_back(i);
    }
    return std::make_pair(worst, runs);
  };
  std::map<std::string, std::size_t> counts;
  struct Line {
    const conformance::CoverageRow* row;
    std::string state;  // a verdict, "not run", "not covered", "not applicable"
    std::string css;
    std::vector<std::size_t> runs;
  };
  std::vector<Line> lines;
  for (const auto& row : run.coverage.rows) {
    Line line{&row, "", "", {}};
    if (row.state == CoverageState::client_side || row.state == CoverageState::untestable) {
      line.state = "not applicable";
      line.css = "coverage-na";
    } else if (row.state == CoverageState::not_covered) {
      line.state = "not covered";
      line.css = "coverage-uncovered";
    } else {
      auto [worst, runs] = judged(row.scenarios, row.id);
      if (worst) {
        line.state = to_string(*worst);
        line.css = verdict_class(*worst);
        line.runs = runs;
      } else {
        line.state = "not run";
        line.css = "coverage-not-run";
      }
    }
    ++counts[line.state];
    lines.push_back(std::move(line));
  }
  html.raw("<h2 id=\"coverage\">Catalog coverage</h2>\n<p class=\"meta\" id=\"coverage-summary\">")
      .text(std::to_string(lines.size()) + " catalog rows:");
  for (const auto& [state, n] : counts) html.raw(" <span class=\"coverage-count\">").text(state + " " + std::to_string(n)).raw("</span>");
  html.raw(". <em>not run</em>: a scenario checks the row but this run did not judge it (filtered, skipped or another "
           "profile); <em>not covered</em>: no scenario checks it yet; <em>not applicable</em>: the row binds clients only, "
           "or no black-box suite can judge it (the reason is given).</p>\n");
  html.raw("<table id=\"coverage-matrix\">\n<thead><tr><th>requirement</th><th>level</th><th>side</th><th>in this run</th><th>scenarios</th></tr></thead>\n<tbody>\n");
  for (const auto& line : lines) {
    const auto& row = *line.row;
    html.raw("<tr data-state=\"").text(line.state).raw("\"><th class=\"mono\">").text(row.id)
        .raw("<div class=\"requirement-text\">").text(row.text).raw("</div></th><td>").text(row.level).raw("</td><td>").text(row.side)
        .raw("</td><td class=\"").raw(line.css).raw("\">").text(line.state);
    if (!row.reason.empty()) html.raw("<div class=\"requirement-text\">").text(row.reason).raw("</div>");
    else if (row.state == CoverageState::client_side) html.raw("<div class=\"requirement-text\">binds EST clients only</div>");
    html.raw("</td><td>");
    for (const auto& id : row.scenarios) {
      std::string anchor;
      for (const auto i : line.runs)
        if (run.scenarios[i].id == id) anchor = anchors[i];
      if (anchor.empty()) html.raw("<span class=\"mono\">").text(id).raw("</span> ");
      else html.raw("<a class=\"mono\" href=\"#").text(anchor).raw("\">").text(id).raw("</a> ");
    }
    html.raw("</td></tr>\n");
  }
  html.raw("</tbody>\n</table>\n");
  if (run.coverage.field_bugs.empty()) return;
  html.raw("<h3 id=\"field-bugs\">Field bugs</h3>\n<table id=\"field-bug-matrix\">\n<thead><tr><th>bug</th><th>rows</th><th>in this run</th><th>scenarios</th></tr></thead>\n<tbody>\n");
  for (const auto& bug : run.coverage.field_bugs) {
    auto [worst, runs] = judged(bug.scenarios, "");
    const std::string state = bug.scenarios.empty() ? "not covered" : worst ? to_string(*worst) : "not run";
    const std::string css = bug.scenarios.empty() ? "coverage-uncovered" : worst ? verdict_class(*worst) : "coverage-not-run";
    std::string rows;
    for (const auto& r : bug.requirements) rows += (rows.empty() ? "" : ", ") + r;
    html.raw("<tr data-state=\"").text(state).raw("\"><th class=\"mono\">").text(bug.id + " " + bug.name)
        .raw("<div class=\"requirement-text\">").text(bug.symptom).raw("</div></th><td class=\"mono\">").text(rows)
        .raw("</td><td class=\"").raw(css).raw("\">").text(state).raw("</td><td>");
    for (const auto& id : bug.scenarios) html.raw("<span class=\"mono\">").text(id).raw("</span> ");
    html.raw("</td></tr>\n");
  }
  html.raw("</tbody>\n</table>\n");
}

void write_filters(Html& html) {
  html.raw("<h2>Scenarios</h2>\n<div id=\"filters\">\n");
  for (const Verdict verdict : all_verdicts()) {
    html.raw("<label><input type=\"checkbox\" class=\"filter-verdict\" value=\"")
        .raw(to_string(verdict))
        .raw("\" checked> ")
        .raw(to_string(verdict))
        .raw("</label>\n");
  }
  html.raw("<input type=\"search\" id=\"filter-text\" placeholder=\"filter by id, title, requirement\" "
           "aria-label=\"filter scenarios by text\">\n<span id=\"filter-count\"></span>\n</div>\n");
}

void write_exchange_part(Html& html, const char* name, std::string_view heading, std::string_view content) {
  html.raw("<div class=\"evidence-label\">").text(heading).raw("</div><pre class=\"").raw(name).raw("\">");
  html.text(content).raw("</pre>\n");
}

void write_step(Html& html, const StepResult& step) {
  const bool failed = has_evidence(step.verdict);
  html.raw("<li class=\"step ").raw(verdict_class(step.verdict)).raw("\"><div class=\"step-head\">");
  html.raw("<span class=\"badge ").raw(verdict_class(step.verdict)).raw("\">").raw(to_string(step.verdict)).raw("</span>");
  html.raw("<span class=\"mono\">").text(step.kind).raw("</span> ").text(step.summary);
  html.raw(" <span class=\"tags\">");
  if (step.line > 0) html.text("line " + std::to_string(step.line) + " · ");
  html.text(milliseconds_text(step.elapsed_ms)).raw("</span></div>\n");
  if (!step.message.empty()) html.raw("<div class=\"message\">").text(step.message).raw("</div>\n");
  if (!step.checks.empty()) {
    html.raw("<ul class=\"checks\">");
    for (const auto& check : step.checks) {
      html.raw("<li class=\"check ")
          .raw(verdict_class(check.verdict))
          .raw("\" data-verdict=\"")
          .raw(to_string(check.verdict))
          .raw("\" data-level=\"")
          .text(check.level)
          .raw("\"><span class=\"badge ")
          .raw(verdict_class(check.verdict))
          .raw("\">")
          .raw(to_string(check.verdict))
          .raw("</span><span class=\"mono\">")
          .text(check.what)
          .raw("</span>");
      if (!check.requirement.empty() || !check.level.empty()) {
        std::vector<std::string> row;
        if (!check.requirement.empty()) row.push_back(check.requirement);
        if (!check.level.empty()) row.push_back(check.level);
        html.raw(" <span class=\"tags\">").text(join(row, " · ")).raw("</span>");
      }
      html.raw("</li>");
    }
    html.raw("</ul>\n");
  }
  if (step.exchange) {
    const auto& exchange = *step.exchange;
    // Failures show their evidence at once; the exchanges of passing steps are one click away.
    html.raw(failed ? "<details class=\"exchange\" open>" : "<details class=\"exchange\">");
    html.raw("<summary>exchange");
    if (!exchange.transport.empty()) html.text(" (" + exchange.transport + ")");
    html.text(", " + milliseconds_text(exchange.elapsed_ms)).raw("</summary>\n");
    write_exchange_part(html, "request", "request", readable_message(exchange.request));
    write_exchange_part(html, "response", "response",
                        exchange.response.empty() ? "(no response)" : readable_message(exchange.response));
    if (!exchange.decoded.empty()) write_exchange_part(html, "decoded", "decoded", exchange.decoded);
    html.raw("</details>\n");
  }
  html.raw("</li>\n");
}

void write_scenario(Html& html, const ScenarioResult& scenario, const std::string& anchor) {
  const std::string verdict = to_string(scenario.verdict);
  std::string search = ascii_lowercase(scenario.id + " " + scenario.title + " " + join(scenario.requirements, " ") + " " +
                             scenario.profile + " " + scenario.spec + " " + scenario.section + " " + verdict);
  html.raw("<section class=\"scenario ")
      .raw(verdict_class(scenario.verdict))
      .raw("\" id=\"")
      .text(anchor)
      .raw("\" data-verdict=\"")
      .raw(verdict)
      .raw("\" data-requirements=\"")
      .text(join(scenario.requirements, " "))
      .raw("\" data-profile=\"")
      .text(scenario.profile)
      .raw("\" data-search=\"")
      .text(search)
      .raw("\">\n");
  // Failures and warnings open; an xfail is known and stays one click away like a pass.
  const bool open = has_evidence(scenario.verdict) && scenario.verdict != Verdict::xfail;
  html.raw(open ? "<details open>" : "<details>");
  html.raw("<summary><span class=\"badge ").raw(verdict_class(scenario.verdict)).raw("\">").raw(verdict).raw("</span>");
  html.raw("<strong class=\"mono\">").text(scenario.id).raw("</strong>");
  html.text(repetition_suffix(scenario));
  html.raw("<span class=\"title\">").text(scenario.title).raw("</span>");
  html.raw("<span class=\"tags\">").text(scenario.profile + " · " + scenario.transport + " · " + spec_name(scenario));
  if (!scenario.section.empty()) html.text(" " + scenario.section);
  html.text(" · " + milliseconds_text(scenario.elapsed_ms)).raw("</span></summary>\n<div>\n");

  html.raw("<p class=\"meta\">requirements <span class=\"mono\">")
      .text(scenario.requirements.empty() ? "none" : join(scenario.requirements, ", "))
      .raw("</span>");
  if (!scenario.file.empty()) {
    html.raw(" &middot; <span class=\"mono\">").text(scenario.file);
    if (scenario.line > 0) html.text(":" + std::to_string(scenario.line));
    html.raw("</span>");
  }
  if (!scenario.unique.empty()) html.raw(" &middot; unique <span class=\"mono\">").text(scenario.unique).raw("</span>");
  if (const auto skipped = scenario.skipped_steps(); skipped > 0) {
    html.raw(" &middot; <span class=\"skipped-steps\">")
        .text(std::to_string(skipped) + " of " + std::to_string(scenario.steps.size()) + " steps skipped")
        .raw("</span>");
  }
  html.raw("</p>\n");
  if (!scenario.message.empty()) html.raw("<p class=\"message\">").text(scenario.message).raw("</p>\n");
  if (!scenario.baseline_reason.empty()) {
    html.raw("<p class=\"baseline\">baseline: ").text(scenario.baseline_reason);
    if (scenario.verdict == Verdict::xpass) html.raw(" &mdash; listed as failing, but it passed: the baseline entry is stale");
    html.raw("</p>\n");
  }
  if (!scenario.steps.empty()) {
    html.raw("<ol class=\"steps\">\n");
    for (const auto& step : scenario.steps) write_step(html, step);
    html.raw("</ol>\n");
  }
  html.raw("</div>\n</details>\n</section>\n");
}

}  // namespace

std::string html_escape(std::string_view text) {
  const std::string clean = printable(text);
  std::string out;
  out.reserve(clean.size() + clean.size() / 8);
  for (const char c : clean) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string html_report(const RunResult& run) {
  const auto anchors = scenario_anchors(run);
  Html html;
  html.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>estlab: ")
      .text(run.target.empty() ? "conformance report" : run.target)
      .raw(run_passed(run) ? " (passed)" : " (failed)")
      .raw("</title>\n<style>")
      .raw(kStyle)
      .raw("</style>\n</head>\n<body>\n");
  write_header(html, run);
  write_matrix(html, run, anchors);
  write_coverage(html, run, anchors);
  write_filters(html);
  html.raw("<div id=\"scenarios\">\n");
  for (std::size_t i = 0; i < run.scenarios.size(); ++i) write_scenario(html, run.scenarios[i], anchors[i]);
  html.raw("</div>\n<script>").raw(kScript).raw("</script>\n</body>\n</html>\n");
  return std::move(html).take();
}

Result<void> write_html(const RunResult& run, const std::filesystem::path& path) {
  return write_text_file(path, html_report(run));
}

}  // namespace estlab::reports
