#include <iostream>

#include "commands.hpp"
#include "estlab/fixtures/fixture_set.hpp"

namespace estlab::cli {

void register_fixtures(CLI::App& app, Action& action) {
  struct Options {
    std::string dir;
    std::string key_type = "ec-p256";
    std::string hostname = "localhost";
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("fixtures", "Write a complete, named PKI into DIR with a manifest.yaml");
  cmd->add_option("DIR", options->dir, "Directory to write (created if missing; must be empty or hold a fixture set)")
      ->required();
  cmd->add_option("--key-type", options->key_type, "Key type: ec-p256, ec-p384, rsa2048, rsa3072, rsa4096, ed25519")
      ->capture_default_str();
  cmd->add_option("--hostname", options->hostname, "DNS name in the gateway's TLS certificate")->capture_default_str();
  cmd->add_flag("--force", options->force, "Replace a fixture set that DIR already holds");
  cmd->callback([options, &action] {
    action = [options] {
      auto key_type = parse_key_type(options->key_type);
      if (!key_type.ok()) {
        std::cerr << "estlab fixtures: " << key_type.error().message << "\n";
        return kExitUsage;
      }
      fixtures::GenerateOptions generate;
      generate.dir = options->dir;
      generate.key_type = *key_type;
      generate.hostname = options->hostname;
      generate.force = options->force;
      auto set = fixtures::generate(generate);
      if (!set.ok()) {
        std::cerr << "estlab " << set.error().message << "\n";  // the message starts with "fixtures:"
        return set.error().code == ErrorCode::internal ? kExitFailed : kExitUsage;
      }
      std::cout << "wrote " << set->items.size() << " fixtures (" << set->key_type << ") to " << options->dir << "/"
                << fixtures::kManifestName << "\n";
      return kExitOk;
    };
  });
}

}  // namespace estlab::cli
