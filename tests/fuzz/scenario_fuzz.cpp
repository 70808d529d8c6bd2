// libFuzzer target for the YAML users write: scenario files (with for_each and transports
// variants) and target files. The first byte picks which. A broken file must end in ConfigError
// naming file and line; anything else escaping is a finding.
#include <cstdint>

#include "estlab/conformance/scenario.hpp"
#include "estlab/conformance/target.hpp"
#include "estlab/core/result.hpp"
#include "fuzz_support.hpp"

using namespace estlab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto text = fuzz::text_of(data + 1, size - 1);
  try {
    if (data[0] & 1) (void)conformance::load_target_file(fuzz::write_input("target.yaml", text));
    else (void)conformance::load_scenario_variants(fuzz::write_input("scenario.yaml", text));
  } catch (const ConfigError&) {
  }
  return 0;
}
