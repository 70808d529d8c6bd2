// The fleet's summary as console text, JSON ("estlab-fleet" version 1) and one self-contained
// HTML page (a latency histogram and throughput over time, drawn as inline SVG).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include <set>

#include "estlab/fleet/fleet.hpp"
#include "estlab/reports/html.hpp"
#include "estlab/reports/json.hpp"

namespace estlab::fleet {

namespace {

std::string fixed(double v, int decimals = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

// Latency histogram buckets: upper bounds in ms, doubling from 1 ms; the last is open.
std::vector<double> bucket_bounds() { return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}; }

std::vector<std::uint64_t> histogram(const FleetReport& report) {
  const auto bounds = bucket_bounds();
  std::vector<std::uint64_t> counts(bounds.size() + 1, 0);
  for (const auto& e : report.exchanges) {
    if (e.status == 0) continue;
    const auto at = std::lower_bound(bounds.begin(), bounds.end(), e.latency_ms) - bounds.begin();
    ++counts[static_cast<std::size_t>(at)];
  }
  return counts;
}

std::string bucket_label(std::size_t i) {
  const auto bounds = bucket_bounds();
  if (i == bounds.size()) return "> " + fixed(bounds.back(), 0);
  return "≤ " + fixed(bounds[i], 0);
}

}  // namespace

std::string to_text(const FleetReport& report) {
  std::ostringstream out;
  const auto latency = report.latency();
  out << "fleet against " << report.target << " (" << report.profile << "): " << report.devices << " devices, "
      << report.exchanges.size() << " exchanges in " << fixed(report.wall_s, 2) << " s = " << fixed(report.exchanges_per_second())
      << " exchanges/s, " << report.errors() << " without an answer\n";
  out << "latency ms (answered): p50 " << fixed(latency.p50) << ", p95 " << fixed(latency.p95) << ", p99 " << fixed(latency.p99)
      << ", max " << fixed(latency.max) << "\n";
  out << "mix " << report.options.mix.to_string() << " over " << to_string(report.options.transport) << "; "
      << (report.options.rate > 0 ? "open loop at " + fixed(report.options.rate) + " devices/s"
                                  : "closed loop, " + std::to_string(report.options.concurrency) + " in flight")
      << ", " << report.options.threads << " event loop(s)\n";
  if (!report.network.empty()) out << "network: " << report.network << "\n";
  if (const auto approval = report.time_to_approval(); approval.count > 0)
    out << "time to approval ms (" << approval.count << " devices, " << report.approval_polls() << " polls): p50 " << fixed(approval.p50)
        << ", p95 " << fixed(approval.p95) << ", p99 " << fixed(approval.p99) << ", max " << fixed(approval.max) << "\n";
  if (report.arrivals_delayed) out << report.arrivals_delayed << " arrivals waited for room (max in flight " << report.options.max_in_flight << ")\n";
  out << "outcomes (behaviour operation: status count):\n";
  for (const auto& [what, statuses] : report.outcomes()) {
    out << "  " << what << ":";
    for (const auto& [status, count] : statuses) out << " " << status << "×" << count;
    out << "\n";
  }
  const auto errors = report.errors_by_message();
  if (!errors.empty()) {
    out << "errors:\n";
    for (const auto& [message, count] : errors) out << "  " << count << "× " << message << "\n";
  }
  return out.str();
}

std::string to_json(const FleetReport& report) {
  using reports::json_string;
  std::ostringstream out;
  const auto latency = report.latency();
  out << "{\n  \"format\": \"estlab-fleet\",\n  \"format_version\": 1,\n";
  out << "  \"target\": " << json_string(report.target) << ",\n  \"profile\": " << json_string(report.profile) << ",\n";
  out << "  \"options\": {\"devices\": " << report.options.devices << ", \"duration_ms\": " << report.options.duration.count()
      << ", \"concurrency\": " << report.options.concurrency << ", \"rate\": " << fixed(report.options.rate, 3)
      << ", \"threads\": " << report.options.threads << ", \"transport\": \"" << to_string(report.options.transport) << "\", \"mix\": " << json_string(report.options.mix.to_string())
      << ", \"seed\": \"" << report.options.seed << "\", \"shard\": \"" << report.options.shard_index << "/" << report.options.shard_count
      << "\"},\n";
  if (!report.network.empty()) out << "  \"network\": " << json_string(report.network) << ",\n";
  out << "  \"devices\": " << report.devices << ",\n  \"exchanges\": " << report.exchanges.size() << ",\n";
  out << "  \"errors\": " << report.errors() << ",\n  \"wall_s\": " << fixed(report.wall_s, 3) << ",\n";
  out << "  \"exchanges_per_second\": " << fixed(report.exchanges_per_second(), 2) << ",\n";
  out << "  \"arrivals_delayed\": " << report.arrivals_delayed << ",\n";
  out << "  \"latency_ms\": {\"count\": " << latency.count << ", \"p50\": " << fixed(latency.p50, 3) << ", \"p95\": " << fixed(latency.p95, 3)
      << ", \"p99\": " << fixed(latency.p99, 3) << ", \"max\": " << fixed(latency.max, 3) << ", \"mean\": " << fixed(latency.mean, 3) << "},\n";
  const auto approval = report.time_to_approval();
  out << "  \"time_to_approval_ms\": {\"count\": " << approval.count << ", \"polls\": " << report.approval_polls() << ", \"p50\": " << fixed(approval.p50, 3)
      << ", \"p95\": " << fixed(approval.p95, 3) << ", \"p99\": " << fixed(approval.p99, 3) << ", \"max\": " << fixed(approval.max, 3) << "},\n";
  out << "  \"outcomes\": {";
  bool first = true;
  for (const auto& [what, statuses] : report.outcomes()) {
    out << (first ? "\n" : ",\n") << "    " << json_string(what) << ": {";
    first = false;
    bool first_status = true;
    for (const auto& [status, count] : statuses) {
      out << (first_status ? "" : ", ") << json_string(status) << ": " << count;
      first_status = false;
    }
    out << "}";
  }
  out << (first ? "},\n" : "\n  },\n");
  out << "  \"errors_by_message\": {";
  first = true;
  for (const auto& [message, count] : report.errors_by_message()) {
    out << (first ? "" : ", ") << json_string(message) << ": " << count;
    first = false;
  }
  out << "},\n  \"throughput_per_second\": [";
  const auto series = report.throughput_per_second();
  for (std::size_t i = 0; i < series.size(); ++i) out << (i ? ", " : "") << series[i];
  out << "],\n  \"latency_histogram\": [";
  const auto counts = histogram(report);
  for (std::size_t i = 0; i < counts.size(); ++i)
    out << (i ? ", " : "") << "{\"bucket\": " << json_string(bucket_label(i)) << ", \"count\": " << counts[i] << "}";
  // Every exchange, for `estlab fleet merge`: [behaviour, operation, status, latency ms, finished at s, error, polls, waited ms].
  out << "],\n  \"records\": [";
  for (std::size_t i = 0; i < report.exchanges.size(); ++i) {
    const auto& e = report.exchanges[i];
    out << (i ? ",\n    " : "\n    ") << "[" << json_string(to_string(e.behaviour)) << ", " << json_string(e.operation) << ", " << e.status << ", "
        << fixed(e.latency_ms, 3) << ", " << fixed(e.finished_at_s, 3) << ", " << json_string(e.error) << ", " << e.polls << ", "
        << fixed(e.waited_ms, 3) << "]";
  }
  out << (report.exchanges.empty() ? "]\n}\n" : "\n  ]\n}\n");
  return out.str();
}

FleetReport from_json(const std::string& text, const std::string& source) {
  FleetReport report;
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root.IsMap() || !root["format"] || root["format"].as<std::string>() != "estlab-fleet")
      throw ConfigError(source + ": not an estlab fleet report (format: estlab-fleet)");
    if (root["format_version"].as<int>() != 1) throw ConfigError(source + ": fleet report format_version " + root["format_version"].as<std::string>() + " is not 1");
    report.target = root["target"].as<std::string>();
    report.profile = root["profile"].as<std::string>();
    const YAML::Node options = root["options"];
    report.options.devices = options["devices"].as<std::uint64_t>();
    report.options.duration = std::chrono::milliseconds(options["duration_ms"].as<long long>());
    report.options.concurrency = options["concurrency"].as<std::size_t>();
    report.options.rate = options["rate"].as<double>();
    report.options.threads = options["threads"].as<std::size_t>();
    if (options["transport"]) report.options.transport = options["transport"].as<std::string>() == "coaps" ? Transport::coaps : Transport::https;
    auto mix = BehaviourMix::parse(options["mix"].as<std::string>());
    if (!mix.ok()) throw ConfigError(source + ": mix: " + mix.error().message);
    report.options.mix = *mix;
    report.options.seed = std::stoull(options["seed"].as<std::string>());
    if (auto shard = parse_shard(options["shard"].as<std::string>()); shard.ok()) {
      report.options.shard_index = shard->first;
      report.options.shard_count = shard->second;
    }
    report.devices = root["devices"].as<std::uint64_t>();
    report.wall_s = root["wall_s"].as<double>();
    report.arrivals_delayed = root["arrivals_delayed"].as<std::uint64_t>();
    for (const auto& record : root["records"]) {
      if (!record.IsSequence() || (record.size() != 6 && record.size() != 8))
        throw ConfigError(source + ": a record is not [behaviour, operation, status, latency, at, error, polls, waited]");
      ExchangeRecord e;
      const auto name = record[0].as<std::string>();
      auto b = BehaviourMix::parse(name);
      if (!b.ok()) throw ConfigError(source + ": record behaviour: " + b.error().message);
      e.behaviour = b->weights.front().first;
      e.operation = record[1].as<std::string>();
      e.status = record[2].as<int>();
      e.latency_ms = record[3].as<double>();
      e.finished_at_s = record[4].as<double>();
      e.error = record[5].as<std::string>();
      if (record.size() == 8) {
        e.polls = record[6].as<int>();
        e.waited_ms = record[7].as<double>();
      }
      report.exchanges.push_back(std::move(e));
    }
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  } catch (const std::logic_error& e) {  // stoull
    throw ConfigError(source + ": " + e.what());
  }
  return report;
}

FleetReport merge(const std::vector<FleetReport>& shards) {
  if (shards.empty()) throw ConfigError("no reports to merge");
  FleetReport merged;
  merged.target = shards.front().target;
  merged.profile = shards.front().profile;
  merged.options = shards.front().options;
  merged.options.shard_index = 0;
  merged.options.shard_count = 1;
  std::set<std::uint64_t> indices;
  for (const auto& s : shards) {
    if (s.options.shard_count != shards.front().options.shard_count || s.options.seed != shards.front().options.seed)
      throw ConfigError("the reports are not shards of one fleet (seeds or shard counts differ)");
    if (!indices.insert(s.options.shard_index).second)
      throw ConfigError("shard " + std::to_string(s.options.shard_index) + " appears twice");
    merged.devices += s.devices;
    merged.wall_s = std::max(merged.wall_s, s.wall_s);
    merged.arrivals_delayed += s.arrivals_delayed;
    merged.exchanges.insert(merged.exchanges.end(), s.exchanges.begin(), s.exchanges.end());
  }
  merged.options.threads = 0;
  for (const auto& s : shards) merged.options.threads += s.options.threads;
  return merged;
}

std::string to_html(const FleetReport& report) {
  using reports::html_escape;
  std::ostringstream out;
  const auto latency = report.latency();
  out << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>estlab fleet: " << html_escape(report.target)
      << "</title>\n<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}"
         "svg{background:#fafafa;border:1px solid #ddd;margin:.5em 0}.bar{fill:#4a7fb5}.line{fill:none;stroke:#b5504a;stroke-width:2}"
         "text{font-size:11px}</style></head><body>\n";
  out << "<h1>estlab fleet</h1>\n<p id=\"summary\">" << report.devices << " devices against " << html_escape(report.target) << " ("
      << html_escape(report.profile) << "): <b id=\"exchanges\">" << report.exchanges.size() << "</b> exchanges in " << fixed(report.wall_s, 2)
      << " s = <b id=\"throughput\">" << fixed(report.exchanges_per_second()) << "</b> exchanges/s; <b id=\"errors\">" << report.errors()
      << "</b> without an answer. Mix " << html_escape(report.options.mix.to_string()) << ".</p>\n";
  out << "<table id=\"latency\"><tr><th>latency ms</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>mean</th></tr><tr><td class=\"l\">answered ("
      << latency.count << ")</td><td>" << fixed(latency.p50) << "</td><td>" << fixed(latency.p95) << "</td><td>" << fixed(latency.p99)
      << "</td><td>" << fixed(latency.max) << "</td><td>" << fixed(latency.mean) << "</td></tr></table>\n";

  if (const auto approval = report.time_to_approval(); approval.count > 0)
    out << "<table id=\"time-to-approval\"><tr><th>time to approval ms</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>polls</th></tr><tr><td class=\"l\">approved ("
        << approval.count << ")</td><td>" << fixed(approval.p50) << "</td><td>" << fixed(approval.p95) << "</td><td>" << fixed(approval.p99)
        << "</td><td>" << fixed(approval.max) << "</td><td>" << report.approval_polls() << "</td></tr></table>\n";

  // Latency histogram.
  const auto counts = histogram(report);
  const std::uint64_t top = std::max<std::uint64_t>(1, *std::max_element(counts.begin(), counts.end()));
  const int width = 720, height = 200, bar = width / static_cast<int>(counts.size());
  out << "<h2>Latency</h2>\n<svg id=\"histogram\" width=\"" << width << "\" height=\"" << height + 30 << "\">";
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const int h = static_cast<int>(std::lround(static_cast<double>(counts[i]) / static_cast<double>(top) * height));
    out << "<rect class=\"bar\" data-bucket=\"" << html_escape(bucket_label(i)) << "\" data-count=\"" << counts[i] << "\" x=\"" << i * bar + 2
        << "\" y=\"" << height - h << "\" width=\"" << bar - 4 << "\" height=\"" << h << "\"><title>" << html_escape(bucket_label(i)) << " ms: "
        << counts[i] << "</title></rect><text x=\"" << i * bar + 4 << "\" y=\"" << height + 15 << "\">" << html_escape(bucket_label(i)) << "</text>";
  }
  out << "</svg>\n";

  // Throughput over time.
  const auto series = report.throughput_per_second();
  const std::uint64_t peak = std::max<std::uint64_t>(1, series.empty() ? 1 : *std::max_element(series.begin(), series.end()));
  out << "<h2>Throughput (exchanges finished per second)</h2>\n<svg id=\"throughput-over-time\" width=\"" << width << "\" height=\"" << height + 30
      << "\"><polyline class=\"line\" points=\"";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const double x = series.size() == 1 ? 0 : static_cast<double>(i) * width / static_cast<double>(series.size() - 1);
    const double y = height - static_cast<double>(series[i]) / static_cast<double>(peak) * height;
    out << fixed(x, 1) << "," << fixed(y, 1) << " ";
  }
  out << "\"/><text x=\"4\" y=\"12\">peak " << peak << "/s</text><text x=\"4\" y=\"" << height + 15 << "\">0 s</text><text x=\"" << width - 40
      << "\" y=\"" << height + 15 << "\">" << series.size() << " s</text></svg>\n";

  out << "<h2>Outcomes</h2>\n<table id=\"outcomes\"><tr><th class=\"l\">behaviour, operation</th><th class=\"l\">status: count</th></tr>\n";
  for (const auto& [what, statuses] : report.outcomes()) {
    out << "<tr><td class=\"l\">" << html_escape(what) << "</td><td class=\"l\">";
    for (const auto& [status, count] : statuses) out << "<span class=\"status\" data-status=\"" << html_escape(status) << "\">" << html_escape(status) << ": " << count << "</span> ";
    out << "</td></tr>\n";
  }
  out << "</table>\n";
  const auto errors = report.errors_by_message();
  if (!errors.empty()) {
    out << "<h2>Errors</h2>\n<table id=\"error-messages\">";
    for (const auto& [message, count] : errors) out << "<tr><td>" << count << "</td><td class=\"l\">" << html_escape(message) << "</td></tr>";
    out << "</table>\n";
  }
  out << "</body></html>\n";
  return out.str();
}

}  // namespace estlab::fleet
