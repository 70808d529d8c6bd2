// What the suite runs against: an EST server reachable over HTTPS, the identities it may use
// (mapped to fixture roles), and the controls it can call (revoke at the CA, approve at the IDM).
// The embedded lab makes one per profile; `--target FILE` describes a vendor's gateway.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/coaps_client.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/result.hpp"
#include "estlab/core/tls.hpp"

namespace estlab::conformance {

using ControlArguments = std::map<std::string, std::string>;
// Runs a control ("revoke", "publish-crl", "approve", "reject", "restart"); the result says
// what happened, for the evidence. approve and reject get "request": the SHA-256 (hex) of the
// scenario's last CSR, which is how the reference gateway names a pending request.
using ControlHook = std::function<Result<std::string>(const std::string& control, const ControlArguments& arguments)>;

// One request an EST-coaps proxy forwarded to its EST server, as that server received it (the
// embedded lab records its proxy's upstream side; a vendor's is not visible).
struct UpstreamRecord {
  std::string method;        // "POST"
  std::string path;          // "/.well-known/est/simpleenroll"
  std::string content_type;  // "application/pkcs10"
  Bytes body;                // the body, base64 decoded (what the device sent in binary)
  std::string client;        // the device identity forwarded with it (its certificate's subject), "" = none
  int status = 0;            // the EST server's HTTP answer; 0 = none came
  // The proxy's own connection to the EST server (9148-5-a/b): "https" (TLS), "" = not known.
  std::string scheme;
  std::string tls_version;                   // "TLSv1.3"
  std::string tls_client;                    // the subject of the TLS client certificate presented; "" = none
  std::vector<std::string> tls_client_ekus;  // its extended key usages, dotted OIDs
};
// The forwarded requests whose body is exactly `body` (a CSR is unique to its step, so parallel
// scenarios never see each other's).
using UpstreamLookup = std::function<std::vector<UpstreamRecord>(ByteView body)>;

struct Target {
  std::string name;     // "embedded protocol-gateway", or the target file's name
  std::string profile;  // the profile the server implements
  std::string host = "127.0.0.1";
  std::uint16_t port = 443;
  std::string server_name;      // TLS name to check; "" = host
  std::uint16_t coaps_port = 0;  // EST-coaps (RFC 9148) on the same host; 0 = none
  UpstreamLookup coaps_upstream; // what the EST-coaps proxy forwarded; empty = not visible (target files)
  std::string default_label;    // CA label used when a step names none; "" = none in the path
  std::vector<Certificate> trust_anchors;
  std::map<std::string, TlsIdentity> identities;  // role -> identity
  std::set<std::string> features;  // serverkeygen, fullcmc, manual-approval, tls1.2, tls1.3, ...
  std::set<std::string> controls;  // which control names control_hook can run
  ControlHook control_hook;
  KeyType key_type = KeyType::ec_p256;  // for keys the suite makes
  // Readings this target applies where the spec leaves a choice (reported with the results).
  std::vector<std::pair<std::string, std::string>> readings;
  // How the target's CA names fresh subjects; {{cn}} is filled by the scenario (csr.cn).
  std::string subject_template = "C=SE,O=estlab lab devices,CN={{cn}}";
  // HTTP Basic credentials the gateway knows: name ("preregistered") -> user, password, subject.
  struct Credential {
    std::string user;
    std::string password;
    std::string subject;  // the DN the credential's device must request
  };
  std::map<std::string, Credential> credentials;
  std::map<std::string, std::string> ca_labels;  // purpose ("other", "rollover") -> CA label
  // True when the controls act on a gateway of this target alone (the embedded lab gives such
  // scenarios gateways of their own); false for hooks on a shared vendor gateway, where a
  // scenario with controls runs alone.
  bool controls_isolated = false;
  // Controls that change what every scenario sees (the lab's clock): a scenario using one runs
  // alone, whatever controls_isolated says; after it, "reset-time" is run where offered.
  std::set<std::string> exclusive_controls;
  // Controls that leave state behind, and the control the runner runs after the scenario to undo
  // it whatever its verdict (the lab's "idm-down" and "operator": "idm-reset").
  std::map<std::string, std::string> undo_controls;
  // The target's time where the suite can know it (the lab's virtual clock): certificates are
  // judged at this time. Empty = the machine's clock.
  std::function<TimePoint()> now;
  // The embedded lab's: the same profile's gateway with these est.properties values over the
  // lab's file (`needs: {config: ...}`), started on first use. Empty for a target file: a vendor's
  // gateway cannot be reconfigured by the suite, so such scenarios skip with the reason.
  // Throws ConfigError for a value the gateway refuses.
  std::function<const Target*(const std::map<std::string, std::string>& config)> configured;
  std::chrono::milliseconds ready_timeout{30'000};  // how long to wait for the target after restart
};

// A target file (YAML) for an external gateway; `estlab target init` writes a commented one:
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
//   subject_template: "CN=est-{{cn}}"
//   credentials: {preregistered: {user: u, password: p, subject: "CN=dev-1"}}
//   ca_labels: {other: ca2, rollover: ca-next}
// or, for a gateway judged under several profiles, `profiles:` mapping each profile to the keys
// that differ for it (base_url, label, ...). Relative paths are taken from the file's directory.
// Unknown keys, roles, features and controls are errors naming the closest known one.
// Throws ConfigError "file:line: what".
std::vector<Target> load_target_file(const std::filesystem::path& file);

// A DTLS client for the target's EST-coaps endpoint: its host and coaps port, checked against its
// trust anchors for its server name, as `identity` (nullopt: anonymous), every wait bounded by
// `timeout`. The one place the suite's coaps clients (channels, pre-flight, tests) are made.
CoapsClientOptions coaps_client_options(const Target& target, std::optional<TlsIdentity> identity, std::chrono::milliseconds timeout);

}  // namespace estlab::conformance
