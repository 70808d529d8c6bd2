// The embedded lab: fresh fixtures, the simulated CA and one reference gateway per profile on
// ephemeral loopback ports (plus protocol-gateways of their own for manual approval and for
// restarts, so those scenarios never disturb parallel ones),
// offered to the runner as Targets whose controls act on the CA and the operator queue directly.
#pragma once

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "estlab/conformance/target.hpp"
#include "estlab/coap_proxy/faults.hpp"
#include "estlab/core/key.hpp"
#include "estlab/gateway/faults.hpp"

namespace estlab::conformance {

struct LabOptions {
  std::filesystem::path dir;  // fixtures, CA store, transcripts; emptied first
  KeyType key_type = KeyType::ec_p256;
  std::set<gateway::Fault> faults;  // applied to every gateway of the lab
  coap_proxy::ProxyFaults proxy_faults;  // applied to every CoAP proxy of the lab
  bool transcripts = false;         // DIR/transcripts/<gateway>/
  std::size_t io_threads = 2;
};

class EmbeddedLab {
 public:
  // Throws ConfigError naming what failed (an unwritable directory, a port that would not bind).
  static std::unique_ptr<EmbeddedLab> start(const LabOptions& options);
  ~EmbeddedLab();

  // One target per profile: "rfc7030" and "protocol-gateway". The manual-approval gateway is
  // offered as a second protocol-gateway target with the feature "manual-approval"; the runner
  // picks it for scenarios that need that feature.
  std::vector<const Target*> targets() const;
  // Gateway log lines (all gateways), for the report's evidence.
  std::vector<std::string> log() const;

  struct Impl;

 private:
  explicit EmbeddedLab(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace estlab::conformance
