// estlab fleet: many simulated devices against the embedded lab or a target file.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "commands.hpp"
#include "estlab/conformance/lab.hpp"
#include "estlab/network/relay.hpp"
#include "estlab/conformance/runner.hpp"
#include "estlab/conformance/target.hpp"
#include "estlab/core/result.hpp"
#include "estlab/fleet/fleet.hpp"
#include "estlab/fleet/virtual_year.hpp"

namespace estlab::cli {

namespace {

struct FleetCommandOptions {
  std::string target;
  std::string profile = "rfc7030";
  std::string out = "estlab-fleet";
  std::uint64_t devices = 100;
  double duration_s = 0;
  std::size_t concurrency = 32;
  double rate = 0;
  std::size_t max_in_flight = 10'000;
  std::size_t threads = 0;
  std::string mix = "enroll=70,reenroll=20,basic=10";
  std::string key_type = "ec-p256";
  std::uint64_t seed = 0;
  int max_polls = 10;
  std::string transport = "https";
  std::string network;
  int approve_after = 1;
  int approval_retry_after = 1;
  double timeout_s = 15;
  int virtual_days = 0;
  double renew_at = 0.5;
  int onboard_days = 1;
  int rollover_day = -1;
  int rollover_spread = 7;
  std::string json;
  std::string html;
  std::string shard;
  bool quiet = false;
};

struct FleetMergeOptions {
  std::vector<std::string> inputs;
  std::string json = "fleet-merged.json";
  std::string html = "fleet-merged.html";
};

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::trunc);
  file << text;
  return static_cast<bool>(file);
}

// --virtual-days: the year in virtual time, on the lab's clock.
int run_virtual_year_command(const FleetCommandOptions& o, const fleet::FleetOptions& options, const conformance::Target& target) {
  fleet::VirtualYearOptions year;
  year.devices = o.devices;
  year.days = o.virtual_days;
  year.renew_at = o.renew_at;
  year.onboard_days = o.onboard_days;
  year.rollover_day = o.rollover_day;
  year.rollover_spread = o.rollover_spread;
  year.concurrency = o.concurrency;
  year.threads = options.threads;
  year.key_type = options.key_type;
  year.seed = options.seed;
  year.timeout = options.timeout;
  const bool tty = !o.quiet && ::isatty(STDERR_FILENO);
  double last_line = -10;
  const auto started = std::chrono::steady_clock::now();
  const auto report = fleet::run_virtual_year(target, year, [&](int day, std::uint64_t exchanges) {
    if (o.quiet) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    char line[160];
    std::snprintf(line, sizeof line, "virtual day %d/%d  %llu exchanges  %.1f s", day, o.virtual_days, static_cast<unsigned long long>(exchanges), elapsed);
    if (tty) {
      std::cerr << "\r" << line << "\x1b[K" << std::flush;
    } else if (elapsed - last_line >= 5.0) {
      last_line = elapsed;
      std::cerr << line << "\n";
    }
  });
  if (tty) std::cerr << "\n";
  std::cout << fleet::to_text(report);
  std::filesystem::create_directories(o.out);
  const std::string json = o.json.empty() ? (std::filesystem::path(o.out) / "virtual-year.json").string() : o.json;
  const std::string html = o.html.empty() ? (std::filesystem::path(o.out) / "virtual-year.html").string() : o.html;
  if (!write_file(json, fleet::to_json(report)) || !write_file(html, fleet::to_html(report))) {
    std::cerr << "estlab fleet: cannot write " << json << " or " << html << "\n";
    return kExitUsage;
  }
  std::cout << "wrote " << json << " and " << html << "\n";
  return report.totals().failures == 0 ? kExitOk : kExitFailed;
}

int run_fleet_command(const FleetCommandOptions& o) {
  fleet::FleetOptions options;
  auto mix = fleet::BehaviourMix::parse(o.mix);
  if (!mix.ok()) {
    std::cerr << "estlab fleet: --mix: " << mix.error().message << "\n";
    return kExitUsage;
  }
  options.mix = *mix;
  auto key_type = parse_key_type(o.key_type);
  if (!key_type.ok()) {
    std::cerr << "estlab fleet: --key-type: " << key_type.error().message << "\n";
    return kExitUsage;
  }
  options.key_type = *key_type;
  options.devices = o.devices;
  options.duration = std::chrono::milliseconds(static_cast<long long>(std::llround(o.duration_s * 1000)));
  options.concurrency = o.concurrency;
  options.rate = o.rate;
  options.max_in_flight = o.max_in_flight;
  options.threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  options.seed = o.seed ? o.seed : static_cast<std::uint64_t>(::getpid());
  options.max_polls = o.max_polls;
  options.transport = o.transport == "coaps" ? fleet::Transport::coaps : fleet::Transport::https;
  if (!o.network.empty()) {
    if (options.transport != fleet::Transport::coaps) {
      std::cerr << "estlab fleet: --network impairs EST-coaps datagrams: it needs --transport coaps\n";
      return kExitUsage;
    }
    auto impairment = network::parse_impairment(o.network);
    if (!impairment.ok()) {
      std::cerr << "estlab fleet: --" << impairment.error().message << "\n";
      return kExitUsage;
    }
    options.network = *impairment;
    std::cout << "estlab fleet: network " << impairment->describe() << "\n";
  }
  const bool wants_approval = std::any_of(options.mix.weights.begin(), options.mix.weights.end(),
                                          [](const auto& w) { return w.first == fleet::Behaviour::approval; });
  options.timeout = std::chrono::milliseconds(static_cast<long long>(std::llround(o.timeout_s * 1000)));
  if (!o.shard.empty()) {
    auto shard = fleet::parse_shard(o.shard);
    if (!shard.ok()) {
      std::cerr << "estlab fleet: --shard: " << shard.error().message << "\n";
      return kExitUsage;
    }
    options.shard_index = shard->first;
    options.shard_count = shard->second;
    if (!o.seed) {
      std::cerr << "estlab fleet: --shard needs --seed, the same on every shard (device names must not collide)\n";
      return kExitUsage;
    }
  }

  std::unique_ptr<conformance::EmbeddedLab> lab;
  std::vector<conformance::Target> external;
  const conformance::Target* target = nullptr;
  const conformance::Target* approval_target = nullptr;
  try {
    if (o.target.empty()) {
      conformance::LabOptions lab_options;
      lab_options.dir = std::filesystem::path(o.out) / "lab";
      lab_options.key_type = options.key_type;
      lab_options.io_threads = options.threads;
      if (!o.quiet) std::cerr << "estlab fleet: building the embedded lab in " << lab_options.dir.string() << "\n";
      lab = conformance::EmbeddedLab::start(lab_options);
      for (const auto* t : lab->targets())
        if (t->profile == o.profile && target == nullptr) target = t;  // the first: the profile's main gateway
    } else {
      external = conformance::load_target_file(o.target);
      for (const auto& t : external)
        if ((t.profile == o.profile || external.size() == 1) && target == nullptr) target = &t;
    }
    if (target == nullptr) {
      std::cerr << "estlab fleet: no target of profile " << o.profile << (o.target.empty() ? " in the embedded lab" : " in " + o.target) << "\n";
      return kExitUsage;
    }
    if (options.transport == fleet::Transport::coaps && target->coaps_port == 0) {
      std::cerr << "estlab fleet: --transport coaps: " << target->name << " offers no EST-coaps"
                << (o.target.empty() ? " (the lab's CoAP proxy serves --profile protocol-gateway)" : " (coaps_port in the target file)") << "\n";
      return kExitUsage;
    }
    if (wants_approval) {
      if (lab) {
        // A gateway of its own with manual approval, asking devices to come back after
        // --approval-retry-after seconds, and an operator who approves on the device's
        // (approve-after + 1)-th request.
        approval_target = target->configured({{"estlab.approval", "manual"},
                                              {"estlab.approval.retry-after", std::to_string(o.approval_retry_after) + "s"}});
      } else {
        for (const auto& t : external)
          if (t.features.count("manual-approval") && approval_target == nullptr) approval_target = &t;
        if (approval_target == nullptr) {
          std::cerr << "estlab fleet: behaviour 'approval' needs a target with the feature manual-approval in " << o.target << "\n";
          return kExitUsage;
        }
      }
      if (approval_target->controls.count("operator")) {
        auto set = approval_target->control_hook("operator", {{"policy", "approve-after=" + std::to_string(o.approve_after)}});
        if (!set.ok()) {
          std::cerr << "estlab fleet: " << approval_target->name << ": operator: " << set.error().message << "\n";
          return kExitUsage;
        }
      } else if (!o.quiet) {
        std::cerr << "estlab fleet: " << approval_target->name << " has no operator control: someone must approve the requests\n";
      }
    }
    if (auto ready = conformance::preflight(*target, options.timeout); !ready.ok()) {
      std::cerr << "estlab fleet: " << target->name << ": " << ready.error().message << "\n";
      return kExitUsage;
    }
    if (o.virtual_days > 0) {
      // Its devices are the lifetimes of factory-enrolled certificates over HTTPS; a mix, a rate
      // or coaps would be silently ignored, so they are refused.
      if (options.transport != fleet::Transport::https || o.rate > 0 || o.duration_s > 0 || wants_approval || options.shard_count > 1) {
        std::cerr << "estlab fleet: --virtual-days runs HTTPS devices by count and concurrency on one lab clock: drop --transport coaps, "
                     "--rate, --duration, --shard and approval\n";
        return kExitUsage;
      }
      return run_virtual_year_command(o, options, *target);
    }
    const bool tty = !o.quiet && ::isatty(STDERR_FILENO);
    auto last_line = std::make_shared<double>(-10.0);
    auto progress = [&](const fleet::Progress& p) {
      if (o.quiet) return;
      const double rate = p.elapsed_s > 0 ? static_cast<double>(p.finished) / p.elapsed_s : 0;
      char line[200];
      if (p.target > 0) {
        const int width = 30;
        const int filled = static_cast<int>(width * static_cast<double>(p.finished) / static_cast<double>(p.target));
        std::snprintf(line, sizeof line, "[%s%s] %llu/%llu devices  %.0f/s  %llu errors  %.1f s", std::string(filled, '#').c_str(),
                      std::string(width - filled, '.').c_str(), static_cast<unsigned long long>(p.finished),
                      static_cast<unsigned long long>(p.target), rate, static_cast<unsigned long long>(p.errors), p.elapsed_s);
      } else {
        std::snprintf(line, sizeof line, "%llu devices done (%.0f/s), %llu errors, %.1f of %.1f s", static_cast<unsigned long long>(p.finished), rate,
                      static_cast<unsigned long long>(p.errors), p.elapsed_s, o.duration_s);
      }
      if (tty) {
        std::cerr << "\r" << line << "\x1b[K" << std::flush;
      } else if (p.elapsed_s - *last_line >= 5.0) {  // a pipe or a CI log: a line every 5 s
        *last_line = p.elapsed_s;
        std::cerr << line << "\n";
      }
    };
    const auto report = fleet::run_fleet(*target, options, progress, approval_target);
    if (tty) std::cerr << "\n";
    std::cout << fleet::to_text(report);
    std::filesystem::create_directories(o.out);
    const std::string json = o.json.empty() ? (std::filesystem::path(o.out) / "fleet.json").string() : o.json;
    const std::string html = o.html.empty() ? (std::filesystem::path(o.out) / "fleet.html").string() : o.html;
    if (!write_file(json, fleet::to_json(report)) || !write_file(html, fleet::to_html(report))) {
      std::cerr << "estlab fleet: cannot write " << json << " or " << html << "\n";
      return kExitUsage;
    }
    std::cout << "wrote " << json << " and " << html << "\n";
    return report.errors() == 0 ? kExitOk : kExitFailed;
  } catch (const ConfigError& e) {
    std::cerr << "estlab fleet: " << e.what() << "\n";
    return kExitUsage;
  }
}

int run_fleet_merge(const FleetMergeOptions& o) {
  try {
    std::vector<fleet::FleetReport> shards;
    for (const auto& input : o.inputs) {
      std::ifstream in(input);
      if (!in) {
        std::cerr << "estlab fleet merge: cannot read " << input << "\n";
        return kExitUsage;
      }
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      shards.push_back(fleet::from_json(text, input));
    }
    const auto merged = fleet::merge(shards);
    std::string missing;
    for (std::uint64_t i = 0; i < shards.front().options.shard_count; ++i)
      if (std::none_of(shards.begin(), shards.end(), [&](const auto& s) { return s.options.shard_index == i; }))
        missing += (missing.empty() ? "" : ", ") + std::to_string(i);
    if (!missing.empty()) std::cerr << "estlab fleet merge: warning: shard(s) " << missing << " of " << shards.front().options.shard_count << " missing\n";
    std::cout << fleet::to_text(merged);
    if (!write_file(o.json, fleet::to_json(merged)) || !write_file(o.html, fleet::to_html(merged))) {
      std::cerr << "estlab fleet merge: cannot write " << o.json << " or " << o.html << "\n";
      return kExitUsage;
    }
    std::cout << "wrote " << o.json << " and " << o.html << "\n";
    return merged.errors() == 0 ? kExitOk : kExitFailed;
  } catch (const ConfigError& e) {
    std::cerr << "estlab fleet merge: " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace

void register_fleet(CLI::App& app, Action& action) {
  auto o = std::make_shared<FleetCommandOptions>();
  auto* cmd = app.add_subcommand("fleet", "Run many simulated EST devices against the embedded lab or a target file");
  cmd->add_option("--target", o->target, "Target file (as for `estlab run`); default: the embedded lab");
  cmd->add_option("--profile", o->profile, "Which target of the lab or file: rfc7030 or protocol-gateway")->capture_default_str()
      ->check(CLI::IsMember({"rfc7030", "protocol-gateway"}));
  cmd->add_option("--out", o->out, "Directory for the lab, fleet.json and fleet.html")->capture_default_str();
  cmd->add_option("--devices", o->devices, "How many devices live (ignored with --duration)")->capture_default_str()->check(CLI::Range(1ull, 100'000'000ull));
  cmd->add_option("--duration", o->duration_s, "Seconds to start devices for, instead of a count")->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--concurrency", o->concurrency, "Closed loop: devices in flight at once")->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--rate", o->rate, "Open loop: devices started per second (instead of --concurrency)")->check(CLI::Range(0.01, 1e6));
  cmd->add_option("--max-in-flight", o->max_in_flight, "Open loop: arrivals beyond this many devices in flight wait (counted)")
      ->capture_default_str()->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--threads", o->threads, "Event loops (default: one per core)")->check(CLI::Range(1, 256));
  cmd->add_option("--mix", o->mix, "Behaviours and weights: enroll, reenroll, basic, revoked, no-eku, serverkeygen, approval")->capture_default_str();
  cmd->add_option("--network", o->network,
                  "coaps: devices reach the proxy through an impaired path, KEY=VALUE,...: loss, duplicate, reorder (\"20%\"), "
                  "delay, jitter (\"30ms\"), mtu, split-client-hello, seed (see `estlab relay --help`)");
  cmd->add_option("--transport", o->transport, "https (to the gateway) or coaps (EST-coaps through the target's CoAP proxy)")
      ->capture_default_str()->check(CLI::IsMember({"https", "coaps"}));
  cmd->add_option("--approve-after", o->approve_after, "approval devices: the operator approves on a request's N+1-th sight (its N-th poll)")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--approval-retry-after", o->approval_retry_after, "Embedded lab: Retry-After seconds of the approval gateway")
      ->capture_default_str()->check(CLI::Range(1, 3600));
  cmd->add_option("--key-type", o->key_type, "Key type of the devices' keys (and of the embedded lab)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Names the devices fleet-<seed>-<n> (default: the process id)");
  cmd->add_option("--max-polls", o->max_polls, "How often a device waiting for approval (202) polls")->capture_default_str()->check(CLI::Range(0, 1000));
  cmd->add_option("--timeout", o->timeout_s, "Seconds for each connect, handshake and read")->capture_default_str()->check(CLI::Range(0.1, 600.0));
  cmd->add_option("--virtual-days", o->virtual_days,
                  "Virtual time: the devices live this many days on the lab's clock (enroll, renew, expiry, rollover); "
                  "writes OUT/virtual-year.json and .html")->check(CLI::Range(1, 3650));
  cmd->add_option("--renew-at", o->renew_at, "Virtual time: renew when this fraction of the certificate's lifetime has passed")
      ->capture_default_str()->check(CLI::Range(0.01, 0.99));
  cmd->add_option("--onboard-days", o->onboard_days, "Virtual time: first enrollments spread over this many days")
      ->capture_default_str()->check(CLI::Range(1, 3650));
  cmd->add_option("--rollover-day", o->rollover_day, "Virtual time: the day the CA's root is rolled over (default: none)")->check(CLI::Range(0, 3650));
  cmd->add_option("--rollover-spread", o->rollover_spread, "Virtual time: days over which devices fetch /cacerts and renew after the rollover")
      ->capture_default_str()->check(CLI::Range(1, 3650));
  cmd->add_option("--json", o->json, "JSON summary file (default: OUT/fleet.json)");
  cmd->add_option("--html", o->html, "HTML page (default: OUT/fleet.html)");
  cmd->add_option("--shard", o->shard, "Run shard I of N (I/N): the devices n with n % N == I; merge the JSON with `estlab fleet merge`");
  cmd->add_flag("--quiet", o->quiet, "No progress bar");
  cmd->footer("Exit codes: 0 every exchange was answered, 1 some got no HTTP answer (timeouts, resets), 2 usage or configuration.");
  auto m = std::make_shared<FleetMergeOptions>();
  auto* merge = cmd->add_subcommand("merge", "Join the JSON reports of the shards of one fleet (--shard I/N) into one report");
  merge->add_option("reports", m->inputs, "fleet.json of each shard")->required()->check(CLI::ExistingFile);
  merge->add_option("--json", m->json, "Merged JSON")->capture_default_str();
  merge->add_option("--html", m->html, "Merged HTML page")->capture_default_str();
  merge->callback([m, &action] { action = [m] { return run_fleet_merge(*m); }; });
  cmd->callback([o, merge, &action] {
    if (!merge->parsed()) action = [o] { return run_fleet_command(*o); };
  });
}

}  // namespace estlab::cli
