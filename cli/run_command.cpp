// `estlab run`: the main job. It builds the embedded lab (fresh fixtures and CA store) and runs
// every check that exists. Until the conformance engine lands (issue 4) the checks are the lab's
// self-checks: every fixture judged by the lab's own path validation against its manifest.
#include <unistd.h>

#include <fstream>
#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "estlab/fixtures/check.hpp"
#include "estlab/fixtures/fixture_set.hpp"

namespace estlab::cli {
namespace {

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

void progress(std::size_t done, std::size_t total, const std::string& label, bool tty) {
  if (!tty) return;
  constexpr int width = 30;
  int filled = total == 0 ? width : static_cast<int>(width * done / total);
  std::cerr << "\r[" << std::string(static_cast<std::size_t>(filled), '#')
            << std::string(static_cast<std::size_t>(width - filled), '-') << "] " << done << "/" << total << " "
            << std::left << std::setw(32) << label.substr(0, 32) << std::flush;
  if (done == total) std::cerr << "\r" << std::string(80, ' ') << "\r";
}

}  // namespace

void register_run(CLI::App& app, Action& action) {
  struct Options {
    std::string out = "estlab-out";
    std::string key_type = "ec-p256";
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("run", "Run the suite against the embedded lab and write reports");
  cmd->add_option("--out", o->out, "Directory for the lab and the reports")->capture_default_str();
  cmd->add_option("--key-type", o->key_type, "Key type of the lab's PKI")->capture_default_str();
  cmd->callback([o, &action] {
    action = [o] {
      auto key_type = parse_key_type(o->key_type);
      if (!key_type.ok()) {
        std::cerr << "estlab run: " << key_type.error().message << "\n";
        return kExitUsage;
      }
      const bool tty = isatty(STDERR_FILENO) != 0;
      const std::filesystem::path out = o->out;
      std::cout << "estlab run: building the embedded lab in " << (out / "lab").string() << "\n";
      fixtures::GenerateOptions generate;
      generate.dir = out / "lab";
      generate.key_type = *key_type;
      generate.force = true;
      auto set = fixtures::generate(generate);
      if (!set.ok()) {
        std::cerr << "estlab run: " << set.error().message << "\n";
        return kExitUsage;
      }

      const TimePoint now = std::chrono::system_clock::now();
      std::vector<fixtures::ItemCheck> results;
      std::size_t total = 0;
      for (const auto& item : set->items) total += item.verify ? 1 : 0;
      for (const auto& item : set->items) {
        if (!item.verify) continue;
        results.push_back(fixtures::check_item(*set, item, now));
        progress(results.size(), total, item.name, tty);
      }

      std::size_t passed = 0;
      std::ofstream json(out / "results.json");
      json << "{\n  \"suite\": \"lab-self-check\",\n  \"results\": [\n";
      for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        passed += r.passed ? 1 : 0;
        std::cout << (r.passed ? "PASS " : "FAIL ") << std::left << std::setw(28) << r.name << " expected " << r.expected;
        if (!r.passed) std::cout << ", got " << r.actual;
        std::cout << "\n";
        json << "    {\"name\": \"" << json_escape(r.name) << "\", \"verdict\": \"" << (r.passed ? "pass" : "fail")
             << "\", \"expected\": \"" << json_escape(r.expected) << "\", \"actual\": \"" << json_escape(r.actual) << "\"}"
             << (i + 1 < results.size() ? "," : "") << "\n";
      }
      json << "  ],\n  \"passed\": " << passed << ",\n  \"failed\": " << results.size() - passed << "\n}\n";
      json.close();
      if (!json) {
        std::cerr << "estlab run: cannot write " << (out / "results.json").string() << "\n";
        return kExitUsage;
      }
      std::cout << "\nlab self-check: " << passed << " passed, " << results.size() - passed << " failed\n"
                << "conformance scenarios: none yet (the engine is issue 4)\n"
                << "results: " << (out / "results.json").string() << "\n";
      return passed == results.size() ? kExitOk : kExitFailed;
    };
  });
}

}  // namespace estlab::cli
