// libFuzzer target for the two configuration files the lab reads from users: est.properties
// (the gateway) and coap.properties (the coaps proxy). The first byte picks which. A bad file must
// end in ConfigError naming file, line and key; anything else escaping is a finding.
#include <cstdint>

#include "estlab/coap_proxy/config.hpp"
#include "estlab/core/properties.hpp"
#include "estlab/core/result.hpp"
#include "estlab/gateway/config.hpp"
#include "fuzz_support.hpp"

using namespace estlab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto text = fuzz::text_of(data + 1, size - 1);
  try {
    if (data[0] & 1) {
      (void)coap_proxy::CoapProxyConfig::load(fuzz::write_input("coap.properties", text));
    } else {
      auto properties = Properties::parse(text, "est.properties");
      if (properties.ok()) (void)gateway::GatewayConfig::from_properties(*properties, fuzz::scratch_dir());
    }
  } catch (const ConfigError&) {
  }
  return 0;
}
