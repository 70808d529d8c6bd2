// The names a target file and the scenarios share: the roles a target maps to identities, the
// features it declares, the controls it can run. One table each, so `estlab target init` lists
// them, the engine rejects a misspelled name with "did you mean", and nobody greps scenarios.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace estlab::conformance {

struct VocabularyEntry {
  std::string_view name;
  std::string_view meaning;
};

struct ControlEntry {
  std::string_view name;
  std::string_view arguments;  // placeholders the command template may use, e.g. "{serial} {reason}"
  std::string_view meaning;
};

// TLS client identities of the fixture set (fixtures/src/fixture_set.cpp) a scenario connects
// as (`connect: {as: ROLE}`). A target maps each role it can offer to a certificate and key; a
// scenario needing a role the target lacks is skipped. Server identities (gateway-tls,
// dtls-server) are the target's own, not roles.
inline constexpr std::array<VocabularyEntry, 15> kRoles = {{
    {"device-factory", "valid factory (IDevID-like) device certificate with clientAuth"},
    {"device-no-clientauth", "device certificate whose EKU lacks clientAuth (serverAuth only): must be refused"},
    {"device-no-eku", "device certificate with no EKU extension: the protocol-gateway rule PG-ENR-2 must still refuse it"},
    {"device-revoked", "device certificate revoked (keyCompromise) and listed on the issuing CA's CRL"},
    {"device-expired", "device certificate that expired a year ago"},
    {"device-superseded", "older, still valid certificate of a subject that has a newer one (not the last issued)"},
    {"device-current", "the last certificate issued for device-superseded's subject"},
    {"device-unknown-ca", "device certificate from a CA outside the server's trust store"},
    {"device-key-agreement", "device certificate whose keyUsage allows keyAgreement (EC) or keyEncipherment (RSA): can receive an encrypted server-generated key (RFC 7030 4.4.1.2)"},
    {"device-twin-a", "device certificate issued by the first of two CAs sharing one subject name"},
    {"device-twin-b", "device certificate issued by the second of two CAs sharing one subject name (other key)"},
    {"device-rollover", "device certificate issued by the rollover CA after its key change"},
    {"ra-officer", "registration authority authenticating with an officer-role certificate (not id-kp-cmcRA)"},
    {"ra-cmc-only", "RA certificate with only id-kp-cmcRA: gives no rights in the protocol-gateway product"},
    {"ra-cmc", "RA certificate from the EST CA with clientAuth and id-kp-cmcRA (RFC 7030 3.7): may forward its clients' linking values"},
}};

// What a target implements beyond the mandatory core; a scenario `needs:` them. `coaps` is
// implied by coaps_port and is not written in features.
inline constexpr std::array<VocabularyEntry, 13> kFeatures = {{
    {"serverkeygen", "/serverkeygen: the server generates the key pair (RFC 7030 4.4)"},
    {"serverkeygen-encrypted", "/serverkeygen also delivers the key encrypted to the client's certificate (RFC 7030 4.4.1.2, 4.4.2)"},
    {"fullcmc", "/fullcmc: Full PKI Requests in CMC (RFC 7030 4.3)"},
    {"csrattrs", "/csrattrs: the CSR attributes the CA wants (RFC 7030 4.5)"},
    {"basic-auth", "HTTP Basic authentication of clients (RFC 7030 3.2.3)"},
    {"labels", "more than one CA behind optional path labels /.well-known/est/LABEL/ (RFC 7030 3.2.2)"},
    {"rollover", "a CA that changed its key: /cacerts serves the rollover certificates (RFC 7030 4.1.3)"},
    {"tls1.2", "the server speaks TLS 1.2"},
    {"tls1.3", "the server speaks TLS 1.3"},
    {"manual-approval", "enrollment waits for an operator: 202 + Retry-After until approved (RFC 7030 4.2.3)"},
    {"coaps", "EST-coaps (RFC 9148) on coaps_port; implied by coaps_port"},
    {"coaps-upstream", "the suite sees what the EST-coaps proxy forwarded to its EST server (the embedded lab only)"},
    {"coaps-slow-upstream", "an EST-coaps proxy behind a slow EST server, whose answers come after an empty ACK (the embedded lab only)"},
}};

// Controls the suite asks the target's operator side to perform: shell commands run by /bin/sh
// with a 60 s deadline, {placeholders} filled in (shell-quoted) by the scenario.
inline constexpr std::array<ControlEntry, 11> kControls = {{
    {"revoke", "{serial} {reason}", "revoke the certificate with this serial (lower-case hex) at the CA; reason as RFC 5280 names it (keyCompromise, ...)"},
    {"publish-crl", "{ca}", "publish a fresh CRL of the CA with this label"},
    {"approve", "{request}", "approve the pending enrollment named by the SHA-256 (hex) of its CSR's DER"},
    {"reject", "{request} {reason}", "reject the pending enrollment named by the SHA-256 (hex) of its CSR's DER, with a reason the device is told"},
    {"restart", "", "restart the EST server (pending requests and issued certificates must survive)"},
    {"advance-time", "{by}", "move the CA's and the gateway's clock forward by a duration (400d, 12h, 30m, 90s)"},
    {"reset-time", "", "bring the CA's and the gateway's clock back to real time (run after a scenario that moved it)"},
    {"start-coap-proxy", "{settings}", "start the EST-coaps proxy with these coap.properties values (KEY=VALUE ...) and stop it again; fails when the proxy refuses to start"},
    {"operator", "{policy}", "what the identity manager's operator does unasked until told otherwise: manual, approve-after=N (approves on the Nth retry), reject=REASON, never"},
    {"idm-down", "", "make the identity manager unreachable from the gateway (PG-IDM-2); the runner brings it back after the scenario"},
    {"idm-up", "", "make the identity manager reachable again"},
}};

std::vector<std::string> role_names();
std::vector<std::string> feature_names();
std::vector<std::string> control_names();

// Levenshtein distance between two names (ASCII, case-sensitive).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The known name closest to a wrong one, for "unknown feature 'tls13' (did you mean 'tls1.3'?)".
// Returns "" when nothing is close: more than a third of the longer name (at least 1, at most 3
// edits) differs, or two known names are equally close.
std::string closest_name(const std::string& wrong, const std::vector<std::string>& known);

// The same tables as lists, plus the names a target file gives data under.
std::vector<VocabularyEntry> known_roles();
std::vector<VocabularyEntry> known_features();
std::vector<VocabularyEntry> known_controls();
const std::vector<VocabularyEntry>& known_credentials();  // credentials: preregistered
const std::vector<VocabularyEntry>& known_ca_labels();    // ca_labels: other, rollover
bool is_known(const std::vector<VocabularyEntry>& vocabulary, std::string_view name);
// "unknown role 'device-factroy' (did you mean 'device-factory'?)" or "... (known: a, b, c)".
std::string unknown_name_message(const std::string& kind, const std::string& wrong, const std::vector<VocabularyEntry>& vocabulary);

}  // namespace estlab::conformance
