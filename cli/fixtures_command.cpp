#include <iostream>

#include "commands.hpp"
#include "estlab/fixtures/fixture_set.hpp"

namespace estlab::cli {

void register_fixtures(CLI::App& app, Action& action) {
  struct Options {
    std::string dir;
    std::string key_type = "ec-p256";
    std::string ca_key_type;
    int chain_depth = 2;
    std::string ca_name_prefix = "estlab";
    std::string organization = "estlab lab";
    std::string subject_style = "lab";
    fixtures::PreregisteredDevice prereg;
    std::string hostname = "localhost";
    bool force = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("fixtures", "Write a complete, named PKI into DIR with a manifest.yaml");
  cmd->add_option("DIR", options->dir, "Directory to write (created if missing; must be empty or hold a fixture set)")
      ->required();
  cmd->add_option("--key-type", options->key_type,
                  "Key type of devices, RAs and servers: ec-p256, ec-p384, rsa2048, rsa3072, rsa4096, ed25519")
      ->capture_default_str();
  cmd->add_option("--ca-key-type", options->ca_key_type, "Key type of the CAs (same names; default: --key-type)");
  cmd->add_option("--chain-depth", options->chain_depth,
                  "CAs from root to the issuing CA: 1 = the root issues devices directly, 2 = root -> issuing CA, "
                  "3 = root -> policy CA -> issuing CA")
      ->capture_default_str();
  cmd->add_option("--ca-name-prefix", options->ca_name_prefix,
                  "First word(s) of every CA commonName (\"<prefix> Root CA\", \"<prefix> Issuing CA\", ...)")
      ->capture_default_str();
  cmd->add_option("--organization", options->organization,
                  "O of the CAs and servers (devices get \"<organization> devices\"); the OU under cn-first")
      ->capture_default_str();
  cmd->add_option("--subject-style", options->subject_style,
                  "How names are spelled: lab = C=SE,O=<org>,CN=<cn>; cn-only = CN=<cn>; "
                  "cn-first = CN=<cn>,OU=<org>,L=Uppsala,C=SE")
      ->capture_default_str();
  cmd->add_option("--prereg-cn", options->prereg.cn,
                  "commonName of the preregistered device (PG-AUTH-2, PG-PRE-1); the device-factory certificate carries it")
      ->capture_default_str();
  cmd->add_option("--prereg-user", options->prereg.user, "HTTP Basic user of the preregistered device")->capture_default_str();
  cmd->add_option("--prereg-password", options->prereg.password, "HTTP Basic password of the preregistered device")
      ->capture_default_str();
  cmd->add_option("--hostname", options->hostname, "DNS name in the gateway's TLS certificate")->capture_default_str();
  cmd->add_flag("--force", options->force, "Replace a fixture set that DIR already holds");
  cmd->callback([options, &action] {
    action = [options] {
      auto key_type = parse_key_type(options->key_type);
      if (!key_type.ok()) {
        std::cerr << "estlab fixtures: --key-type: " << key_type.error().message << "\n";
        return kExitUsage;
      }
      fixtures::GenerateOptions generate;
      if (!options->ca_key_type.empty()) {
        auto ca_key_type = parse_key_type(options->ca_key_type);
        if (!ca_key_type.ok()) {
          std::cerr << "estlab fixtures: --ca-key-type: " << ca_key_type.error().message << "\n";
          return kExitUsage;
        }
        generate.ca_key_type = *ca_key_type;
      }
      auto style = fixtures::parse_subject_style(options->subject_style);
      if (!style.ok()) {
        std::cerr << "estlab fixtures: --subject-style: " << style.error().message << "\n";
        return kExitUsage;
      }
      generate.dir = options->dir;
      generate.key_type = *key_type;
      generate.chain_depth = options->chain_depth;
      generate.ca_name_prefix = options->ca_name_prefix;
      generate.organization = options->organization;
      generate.subject_style = *style;
      generate.preregistered = options->prereg;
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
