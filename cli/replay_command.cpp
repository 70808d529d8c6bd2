// `estlab replay`: a recorded exchange (gateway transcript files) or a user's CSR becomes a scenario
// skeleton in a directory, checked by loading it back.
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "estlab/conformance/replay.hpp"
#include "estlab/conformance/scenario.hpp"

namespace estlab::cli {
namespace {

struct ReplayOptions {
  std::vector<std::string> transcripts;
  std::string csr;
  std::string op = "simpleenroll";
  std::string role = "device-factory";
  std::string id;
  std::string profile;
  std::string out;
};

int run_replay(const ReplayOptions& o) {
  if (o.transcripts.empty() && o.csr.empty()) {
    std::cerr << "estlab replay: give transcript files (from estlab gateway --transcript) or --csr FILE\n";
    return kExitUsage;
  }
  conformance::ReplayInput input;
  for (const auto& t : o.transcripts) input.transcripts.emplace_back(t);
  input.csr_file = o.csr;
  input.operation = o.op;
  input.role = o.role;
  input.id = o.id;
  input.profile = o.profile;
  const auto output = conformance::make_replay_scenario(input);  // ConfigError -> exit 2

  const std::filesystem::path dir = o.out;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::cerr << "estlab replay: cannot create " << dir.string() << ": " << ec.message() << "\n";
    return kExitUsage;
  }
  auto write = [&](const std::filesystem::path& path, const std::string& content) {
    std::ofstream file(path, std::ios::trunc);
    file << content;
    file.close();
    if (!file) throw ConfigError("cannot write " + path.string());
  };
  for (const auto& [name, content] : output.files) write(dir / name, content);
  // The id decides the file name; read it back from the skeleton's first id line.
  const auto id_start = output.scenario_yaml.find("\nid: ") + 5;
  const std::string id = output.scenario_yaml.substr(id_start, output.scenario_yaml.find('\n', id_start) - id_start);
  const auto scenario_file = dir / (id + ".yaml");
  write(scenario_file, output.scenario_yaml);
  const auto loaded = conformance::load_scenario_file(scenario_file);  // the skeleton must load as it is
  std::cout << "estlab replay: wrote " << scenario_file.string() << " (" << loaded.steps.size() << " steps";
  for (const auto& [name, _] : output.files) std::cout << ", " << name;
  std::cout << ")\nrun it with: estlab run --scenarios " << dir.string() << "\n";
  return kExitOk;
}

}  // namespace

void register_replay(CLI::App& app, Action& action) {
  auto o = std::make_shared<ReplayOptions>();
  CLI::App* cmd = app.add_subcommand("replay", "Turn recorded exchanges or a CSR into a scenario skeleton (a field bug becomes a test)");
  cmd->add_option("transcripts", o->transcripts, "Transcript files written by `estlab gateway --transcript DIR`, in order");
  cmd->add_option("--csr", o->csr, "A CSR (PEM, DER or base64) to replay instead of transcripts");
  cmd->add_option("--op", o->op, "Operation for --csr")->capture_default_str();
  cmd->add_option("--role", o->role, "Identity role the scenario connects as")->capture_default_str();
  cmd->add_option("--id", o->id, "Scenario id (default: derived from the input)");
  cmd->add_option("--profile", o->profile, "Profile the scenario applies to (default: both)");
  cmd->add_option("--out", o->out, "Directory to write the scenario and its files into")->required();
  cmd->footer("Exit codes: 0 written, 2 bad input.");
  cmd->callback([o, &action] { action = [o] { return run_replay(*o); }; });
}

}  // namespace estlab::cli
