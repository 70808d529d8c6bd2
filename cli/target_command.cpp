// `estlab target`: target files for `estlab run --target`. `init` writes a commented one that
// names every key, role, feature and control (from the vocabulary tables, so it cannot drift
// from what the engine knows); `check` loads one and says what the suite understood of it.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "estlab/conformance/target.hpp"
#include "estlab/conformance/vocabulary.hpp"
#include "estlab/core/key.hpp"

namespace estlab::cli {
namespace {

// Convention of the generated file: "# text" explains; "#key: value" (no space after '#', or two
// spaces for nested lines) is a setting to uncomment by deleting the '#'.
std::string target_template(const std::string& profile) {
  using namespace conformance;
  std::ostringstream o;
  o << "# estlab target file (written by `estlab target init --profile " << profile << "`).\n"
       "# Describes an EST server for `estlab run --target FILE`. Fill in base_url and trust_anchors,\n"
       "# then uncomment (delete the leading '#') what the server offers. A scenario needing a role,\n"
       "# feature or control this file lacks is skipped with the reason, never failed.\n"
       "# Relative paths are taken from this file's directory. Check it with `estlab target check FILE`.\n"
       "\n"
       "# Shown in the reports (default: this file's name).\n"
       "name: my EST server\n"
       "\n"
       "# The profile the server implements: rfc7030 (RFC 7030 as written) or protocol-gateway\n"
       "# (the product profile's stricter rules, PG-*).\n"
       "profile: "
    << profile
    << "\n"
       "\n"
       "# REQUIRED: https://host[:port] of the EST server; the suite adds /.well-known/est/...\n"
       "base_url: https://est.example:8443\n"
       "\n"
       "# REQUIRED: PEM file with the CA certificate(s) that validate the server's TLS certificate.\n"
       "trust_anchors: anchors.pem\n"
       "\n"
       "# UDP port of EST-coaps (RFC 9148) on the same host; enables the coaps scenarios.\n"
       "#coaps_port: 5684\n"
       "\n"
       "# The DNS name the server's certificate must carry (default: the host of base_url).\n"
       "#server_name: est.example\n"
       "\n"
       "# Default CA label, as in /.well-known/est/LABEL/simpleenroll (\"\" = no label in the path).\n"
       "#label: \"\"\n"
       "\n"
       "# Key type of the keys the suite generates: ";
  for (std::size_t i = 0; i < all_key_types().size(); ++i) o << (i ? ", " : "") << to_string(all_key_types()[i]);
  o << ".\n"
       "#key_type: ec-p256\n"
       "\n"
       "# How the server's CA names fresh subjects; the scenario fills in {{cn}}.\n"
       "#subject_template: \"C=SE,O=estlab lab devices,CN={{cn}}\"\n"
       "\n"
       "# HTTP Basic credentials of a device preregistered at the server (basic-auth scenarios):\n"
       "# user and password, and the subject the server expects that device to enroll.\n"
       "#credentials:\n"
       "#  preregistered: {user: device-0001, password: secret, subject: \"C=SE,O=estlab lab devices,CN=device-0001\"}\n"
       "\n"
       "# Labels of the server's other CAs: a second CA (feature labels) and one that changed its key\n"
       "# (feature rollover).\n"
       "#ca_labels:\n"
       "#  other: LABEL\n"
       "#  rollover: LABEL\n"
       "\n"
       "# What the server implements beyond the mandatory core (a scenario `needs:` them). coaps is\n"
       "# implied by coaps_port.\n"
       "#features:\n";
  for (const auto& f : kFeatures) {
    if (f.name == "coaps") continue;
    o << "#  - " << f.name << std::string(f.name.size() < 16 ? 16 - f.name.size() : 1, ' ') << "# " << f.meaning << "\n";
  }
  o << "\n"
       "# The server's credentials mapped to the suite's roles (`connect: {as: ROLE}` in a scenario):\n"
       "# {certificate: PEM (leaf first, then its chain), key: PEM} or {pkcs12: FILE, password: PW}.\n"
       "# Each role stands for a certificate with the property described; a role left out skips the\n"
       "# scenarios that need it. `estlab fixtures DIR` writes a lab PKI with every role.\n"
       "#identities:\n";
  for (const auto& r : kRoles) {
    o << "#  # " << r.meaning << "\n"
      << "#  " << r.name << ": {certificate: " << r.name << "-chain.pem, key: " << r.name << ".key}\n";
  }
  o << "\n"
       "# Operator actions the suite asks for: shell commands run by /bin/sh with a 60 s deadline,\n"
       "# each {placeholder} filled in shell-quoted; a non-zero exit is a scenario error.\n"
       "#controls:\n";
  for (const auto& c : kControls) {
    o << "#  # " << c.meaning << "\n"
      << "#  " << c.name << ": \"./" << c.name << ".sh" << (c.arguments.empty() ? "" : " ") << c.arguments << "\"\n";
  }
  o << "\n"
       "# How this server reads the points the specification leaves open, reported with the results\n"
       "# (free text: requirement and setting, then the reading).\n"
       "#readings:\n"
       "#  PG-ENR-4 allowRenewalWithOldCertificates: \"true = rule on\"\n";
  return o.str();
}

int init(const std::string& profile, const std::string& out, bool force) {
  if (profile != "rfc7030" && profile != "protocol-gateway") {
    std::cerr << "estlab target init: --profile must be rfc7030 or protocol-gateway, not '" << profile << "'\n";
    return kExitUsage;
  }
  const std::string text = target_template(profile);
  if (out.empty() || out == "-") {
    std::cout << text;
    return kExitOk;
  }
  std::error_code ec;
  if (!force && std::filesystem::exists(out, ec)) {
    std::cerr << "estlab target init: " << out << " exists (--force replaces it)\n";
    return kExitUsage;
  }
  std::ofstream file(out, std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    std::cerr << "estlab target init: cannot write " << out << "\n";
    return kExitUsage;
  }
  std::cout << "wrote " << out << ": fill in base_url and trust_anchors, uncomment what the server offers\n";
  return kExitOk;
}

// What estlab understood of a target file; unknown names never get here (load_target_file
// refuses them with "did you mean").
int check(const std::string& file) {
  const auto targets = conformance::load_target_file(file);  // ConfigError -> "file:line: what", exit 2
  for (const auto& t : targets) {
    std::cout << file << ": " << t.name << ", profile " << t.profile << ", https://" << t.host << ":" << t.port
              << (t.coaps_port ? ", coaps port " + std::to_string(t.coaps_port) : "") << "\n";
    std::cout << "  trust anchors: " << t.trust_anchors.size() << "\n";
    std::cout << "  key type: " << to_string(t.key_type) << "\n";
    std::cout << "  subject template: " << t.subject_template << "\n";
    std::string roles, features, controls, credentials, labels;
    for (const auto& [role, identity] : t.identities) roles += " " + role;
    for (const auto& f : t.features) features += " " + f;
    for (const auto& c : t.controls) controls += " " + c;
    for (const auto& [name, c] : t.credentials) credentials += " " + name;
    for (const auto& [purpose, label] : t.ca_labels) labels += " " + purpose + "=" + label;
    std::cout << "  roles:" << (roles.empty() ? " (none)" : roles) << "\n";
    std::cout << "  features:" << (features.empty() ? " (none)" : features) << "\n";
    std::cout << "  controls:" << (controls.empty() ? " (none)" : controls) << "\n";
    std::cout << "  credentials:" << (credentials.empty() ? " (none)" : credentials) << "\n";
    std::cout << "  ca labels:" << (labels.empty() ? " (none)" : labels) << "\n";
  }
  return kExitOk;
}

}  // namespace

void register_target(CLI::App& app, Action& action) {
  CLI::App* target = app.add_subcommand("target", "Write or check a target file (an external EST server for `estlab run --target`)");
  target->require_subcommand(1);

  struct InitOptions {
    std::string profile = "rfc7030";
    std::string out;
    bool force = false;
  };
  auto i = std::make_shared<InitOptions>();
  CLI::App* init_cmd = target->add_subcommand("init", "Write a commented target file naming every key, role, feature and control");
  init_cmd->add_option("--profile", i->profile, "rfc7030 or protocol-gateway")->capture_default_str();
  init_cmd->add_option("--out", i->out, "File to write (default: standard output)");
  init_cmd->add_flag("--force", i->force, "Replace --out if it exists");
  init_cmd->footer("Fill in base_url and trust_anchors, uncomment the rest as the server allows, then run\n"
                   "`estlab target check FILE` and `estlab run --target FILE`.");
  init_cmd->callback([i, &action] { action = [i] { return init(i->profile, i->out, i->force); }; });

  auto file = std::make_shared<std::string>();
  CLI::App* check_cmd = target->add_subcommand("check", "Load a target file and show the roles, features and controls understood");
  check_cmd->add_option("FILE", *file, "Target file")->required();
  check_cmd->footer("Exit codes: 0 the file loads, 2 it does not (file:line: what; a misspelled role, feature or control gets \"did you mean\").");
  check_cmd->callback([file, &action] { action = [file] { return check(*file); }; });
}

}  // namespace estlab::cli
