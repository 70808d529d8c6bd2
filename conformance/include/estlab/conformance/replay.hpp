// `estlab replay`: turns recorded exchanges (the gateway's --transcript files) or a user's CSR into
// a scenario skeleton, so a field bug becomes a regression test. The skeleton loads as it is; the
// person then maps the client role and sharpens the expectations.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace estlab::conformance {

struct ReplayInput {
  std::vector<std::filesystem::path> transcripts;  // gateway transcript YAML files, in order
  std::filesystem::path csr_file;                  // or: a CSR (PEM, DER or base64)
  std::string operation = "simpleenroll";          // with csr_file
  std::string role = "device-factory";             // identity role the skeleton connects as (a known role)
  std::string id;                                  // scenario id; "" = derived
  std::string profile;                             // "" = from the transcript, else both
};

struct ReplayOutput {
  std::string scenario_yaml;
  // Extra files the scenario refers to (CSRs, the client's certificate): name -> content.
  std::vector<std::pair<std::string, std::string>> files;
};

// Throws ConfigError naming the file and what is wrong with it.
ReplayOutput make_replay_scenario(const ReplayInput& input);

}  // namespace estlab::conformance
