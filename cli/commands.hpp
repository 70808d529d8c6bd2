// The `estlab` command line: one function per subcommand registers its options and its action.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace estlab::cli {

// Exit codes CI can rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // something checked did not pass
inline constexpr int kExitUsage = 2;   // bad arguments or configuration

// Each register_* adds a subcommand; its action runs after parsing and sets the exit code.
using Action = std::function<int()>;
void register_fixtures(CLI::App& app, Action& action);
void register_ca(CLI::App& app, Action& action);
void register_run(CLI::App& app, Action& action);
void register_gateway(CLI::App& app, Action& action);
void register_replay(CLI::App& app, Action& action);
void register_coap_proxy(CLI::App& app, Action& action);
void register_target(CLI::App& app, Action& action);
void register_coverage(CLI::App& app, Action& action);
void register_fleet(CLI::App& app, Action& action);
void register_idm(CLI::App& app, Action& action);
void register_relay(CLI::App& app, Action& action);

}  // namespace estlab::cli
