// What the suite runs against: an EST server reachable over HTTPS, the identities it may use
// (mapped to fixture roles), and the controls it can call (revoke at the CA, approve at the IDM).
// The embedded lab makes one per profile; `--target FILE` describes a vendor's gateway.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/result.hpp"
#include "estlab/core/tls.hpp"

namespace estlab::conformance {

using ControlArguments = std::map<std::string, std::string>;
// Runs a control ("revoke", "publish-crl", "approve", "reject", "restart"); the result says
// what happened, for the evidence. approve and reject get "request": the SHA-256 (hex) of the
// scenario's last CSR, which is how the reference gateway names a pending request.
using ControlHook = std::function<Result<std::string>(const std::string& control, const ControlArguments& arguments)>;

struct Target {
  std::string name;     // "embedded protocol-gateway", or the target file's name
  std::string profile;  // the profile the server implements
  std::string host = "127.0.0.1";
  std::uint16_t port = 443;
  std::string server_name;      // TLS name to check; "" = host
  std::uint16_t coaps_port = 0;  // EST-coaps (RFC 9148) on the same host; 0 = none
  std::string default_label;    // CA label used when a step names none; "" = none in the path
  std::vector<Certificate> trust_anchors;
  std::map<std::string, TlsIdentity> identities;  // role -> identity
  std::set<std::string> features;  // serverkeygen, fullcmc, manual-approval, tls1.2, tls1.3, ...
  std::set<std::string> controls;  // which control names control_hook can run
  ControlHook control_hook;
  KeyType key_type = KeyType::ec_p256;  // for keys the suite makes
  // Readings this target applies where the spec leaves a choice (reported with the results).
  std::vector<std::pair<std::string, std::string>> readings;
};

// A target file (YAML) for an external gateway:
//   name: vendor gateway 2.3
//   profile: protocol-gateway
//   base_url: https://est.example:8443      # host and port
//   coaps_port: 5684                        # optional: EST-coaps on the same host
//   server_name: est.example                # optional
//   label: ""                               # optional default CA label
//   trust_anchors: anchors.pem
//   key_type: ec-p256
//   features: [serverkeygen, fullcmc]
//   identities:
//     device-factory: {certificate: dev-chain.pem, key: dev.key}   # or {pkcs12: x.p12, password: pw}
//   controls:
//     revoke: "./revoke.sh {serial} {reason}"   # run by /bin/sh with a 60 s deadline
// Relative paths are taken from the file's directory. Throws ConfigError "file:line: what".
Target load_target_file(const std::filesystem::path& file);

}  // namespace estlab::conformance
