// libFuzzer target for `estlab replay`: a gateway transcript (YAML written by the gateway, but
// handed around by users and edited) turned into a scenario. A bad transcript must end in
// ConfigError; anything else escaping is a finding.
#include <cstdint>

#include "estlab/conformance/replay.hpp"
#include "estlab/core/result.hpp"
#include "fuzz_support.hpp"

using namespace estlab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  conformance::ReplayInput input;
  input.transcripts.push_back(fuzz::write_input("transcript.yaml", fuzz::text_of(data, size)));
  try {
    (void)conformance::make_replay_scenario(input);
  } catch (const ConfigError&) {
  }
  return 0;
}
