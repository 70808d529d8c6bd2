#include <iostream>

#include "commands.hpp"
#include "estlab/core/result.hpp"

int main(int argc, char** argv) {
  CLI::App app{"estlab: conformance suite and lab for EST (RFC 7030, RFC 8951) and EST-coaps (RFC 9148)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "estlab 0.1.0");
  app.footer("Exit codes: 0 all passed, 1 a check failed, 2 usage or configuration error.\n"
             "Run `estlab COMMAND --help` for a command's options.");

  estlab::cli::Action action;
  estlab::cli::register_run(app, action);
  estlab::cli::register_fixtures(app, action);
  estlab::cli::register_ca(app, action);
  estlab::cli::register_gateway(app, action);
  estlab::cli::register_replay(app, action);
  estlab::cli::register_coap_proxy(app, action);
  estlab::cli::register_target(app, action);
  estlab::cli::register_coverage(app, action);
  estlab::cli::register_fleet(app, action);
  estlab::cli::register_idm(app, action);
  estlab::cli::register_relay(app, action);

  // CLI11 would only say "A subcommand is required"; name the unknown command instead.
  auto known = app.get_subcommands([](const CLI::App*) { return true; });
  auto is_known = [&](const std::string& name) {
    for (const auto* sub : known) {
      if (sub->get_name() == name) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_known(argv[1])) {
    std::cerr << "estlab: unknown command '" << argv[1] << "' (commands: run, fixtures, ca, gateway, replay, coap-proxy, target, coverage, idm; see estlab --help)\n";
    return estlab::cli::kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return estlab::cli::kExitUsage;
  }
  try {
    return action ? action() : estlab::cli::kExitUsage;
  } catch (const estlab::ConfigError& e) {
    std::cerr << "estlab: " << e.what() << "\n";
    return estlab::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "estlab: internal error: " << e.what() << "\n";
    return estlab::cli::kExitFailed;
  }
}
