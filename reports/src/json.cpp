#include "estlab/reports/json.hpp"

#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include "estlab/reports/text.hpp"

namespace estlab::reports {

using conformance::Exchange;
using conformance::RunResult;
using conformance::ScenarioResult;
using conformance::StepResult;
using conformance::Verdict;

namespace {

// A pretty-printing writer: one member or element per line, two-space indentation, "[]" and "{}"
// for empty containers. Keys are written in the order the code writes them, which is the format.
class JsonWriter {
 public:
  std::string take() && {
    out_ += '\n';
    return std::move(out_);
  }

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  JsonWriter& key(std::string_view name) {
    element();
    out_ += json_string(name);
    out_ += ": ";
    after_key_ = true;
    return *this;
  }

  void value(std::string_view text) { scalar(json_string(text)); }
  void value(const char* text) { scalar(json_string(text)); }
  void value(bool flag) { scalar(flag ? "true" : "false"); }
  void value(long long number) { scalar(std::to_string(number)); }
  void value(std::size_t number) { scalar(std::to_string(number)); }
  void value(int number) { scalar(std::to_string(number)); }
  void value(double number) {
    if (!std::isfinite(number)) return scalar("null");
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3f", number);
    scalar(buffer);
  }
  void null() { scalar("null"); }

  void strings(const std::vector<std::string>& items) {
    begin_array();
    for (const auto& item : items) value(item);
    end_array();
  }

 private:
  struct Level {
    bool empty = true;
  };

  // Before a member or an element: the comma and the line break.
  void element() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (levels_.empty()) return;
    if (!levels_.back().empty) out_ += ',';
    levels_.back().empty = false;
    out_ += '\n';
    out_.append(2 * levels_.size(), ' ');
  }

  void scalar(std::string_view text) {
    element();
    out_.append(text);
  }

  void open(char bracket) {
    element();
    out_ += bracket;
    levels_.push_back({});
  }

  void close(char bracket) {
    const bool empty = levels_.back().empty;
    levels_.pop_back();
    if (!empty) {
      out_ += '\n';
      out_.append(2 * levels_.size(), ' ');
    }
    out_ += bracket;
  }

  std::string out_;
  std::vector<Level> levels_;
  bool after_key_ = false;
};

void write_exchange(JsonWriter& json, const Exchange& exchange) {
  json.begin_object();
  json.key("transport").value(exchange.transport);
  json.key("request").value(exchange.request);
  json.key("response").value(exchange.response);
  json.key("decoded").value(exchange.decoded);
  json.key("elapsed_ms").value(exchange.elapsed_ms);
  json.end_object();
}

void write_step(JsonWriter& json, const StepResult& step) {
  json.begin_object();
  json.key("index").value(step.index);
  json.key("line").value(step.line);
  json.key("kind").value(step.kind);
  json.key("summary").value(step.summary);
  json.key("verdict").value(to_string(step.verdict));
  json.key("message").value(step.message);
  json.key("checks").begin_array();
  for (const auto& check : step.checks) {
    json.begin_object();
    json.key("what").value(check.what);
    json.key("verdict").value(to_string(check.verdict));
    json.key("requirement").value(check.requirement);
    json.key("level").value(check.level);
    json.end_object();
  }
  json.end_array();
  json.key("elapsed_ms").value(step.elapsed_ms);
  json.key("exchange");
  if (step.exchange) {
    write_exchange(json, *step.exchange);
  } else {
    json.null();
  }
  json.end_object();
}

void write_scenario(JsonWriter& json, const ScenarioResult& scenario) {
  json.begin_object();
  json.key("id").value(scenario.id);
  json.key("title").value(scenario.title);
  json.key("file").value(scenario.file);
  json.key("line").value(scenario.line);
  json.key("requirements").strings(scenario.requirements);
  json.key("profile").value(scenario.profile);
  json.key("transport").value(scenario.transport);
  json.key("spec").value(scenario.spec);
  json.key("section").value(scenario.section);
  json.key("repetition").value(scenario.repetition);
  json.key("unique").value(scenario.unique);
  json.key("verdict").value(to_string(scenario.verdict));
  json.key("message").value(scenario.message);
  json.key("baseline_reason").value(scenario.baseline_reason);
  json.key("skipped_steps").value(scenario.skipped_steps());
  json.key("elapsed_ms").value(scenario.elapsed_ms);
  json.key("steps").begin_array();
  for (const auto& step : scenario.steps) write_step(json, step);
  json.end_array();
  json.end_object();
}

}  // namespace

std::string json_string(std::string_view text) {
  const std::string utf8 = valid_utf8(text);
  std::string out;
  out.reserve(utf8.size() + 2);
  out += '"';
  char buffer[8];
  for (const char c : utf8) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string json_report(const RunResult& run) {
  JsonWriter json;
  json.begin_object();
  json.key("format").value("estlab-conformance");
  json.key("format_version").value(2);
  json.key("estlab_version").value(run.estlab_version);
  json.key("target").value(run.target);
  json.key("started_at").value(run.started_at);
  json.key("elapsed_ms").value(run.elapsed_ms);
  json.key("seed").value(std::to_string(run.seed));
  json.key("replay").value("--seed " + std::to_string(run.seed));
  json.key("strict").value(run.strict);
  json.key("baseline").value(run.baseline);
  json.key("all_passed").value(run_passed(run));
  json.key("profiles").strings(run_profiles(run));
  json.key("readings").begin_array();
  for (const auto& [name, value] : run.readings) {
    json.begin_object();
    json.key("name").value(name);
    json.key("value").value(value);
    json.end_object();
  }
  json.end_array();
  // The catalog's words for every requirement the run names.
  json.key("requirements").begin_object();
  for (const auto& [id, text] : run.requirement_texts) json.key(id).value(text);
  json.end_object();
  json.key("counts").begin_object();
  json.key("total").value(run.scenarios.size());
  for (const Verdict verdict : all_verdicts()) json.key(to_string(verdict)).value(run.count(verdict));
  json.key("partially_skipped").value(run.partially_skipped());
  json.end_object();
  const auto skips = skip_summary(run);
  json.key("skipped").begin_object();
  json.key("runs").value(skips.runs);
  json.key("partially").value(skips.partially);
  json.key("lacks").begin_array();
  for (const auto& [what, runs] : skips.lacks) {
    json.begin_object();
    json.key("what").value(what);
    json.key("runs").value(runs);
    json.end_object();
  }
  json.end_array();
  json.key("reasons").begin_array();
  for (const auto& [why, runs] : skips.reasons) {
    json.begin_object();
    json.key("reason").value(why);
    json.key("runs").value(runs);
    json.end_object();
  }
  json.end_array();
  json.end_object();
  json.key("scenarios").begin_array();
  for (const auto& scenario : run.scenarios) write_scenario(json, scenario);
  json.end_array();
  json.end_object();
  return std::move(json).take();
}

Result<void> write_json(const RunResult& run, const std::filesystem::path& path) {
  return write_text_file(path, json_report(run));
}

}  // namespace estlab::reports
