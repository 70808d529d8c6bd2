// The judge: a pure function from (expectation, what came back) to verdicts. No sockets, no clock,
// no lab: it is unit-tested with answers recorded from several servers, including answers that are
// right in ways the lab never produces (three-tier bags, CN-only subjects, a TLS alert instead of
// a 403). The runner gathers the observation and applies the verdicts.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "estlab/conformance/result.hpp"
#include "estlab/conformance/scenario.hpp"
#include "estlab/conformance/target.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/https_client.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/tls.hpp"

namespace estlab::conformance {

// How a failed check counts: MUST -> fail, SHOULD (and derived) -> warn, MAY/OPTIONAL/record -> info.
enum class Level { must, should, info };
const char* to_string(Level level);  // "MUST", "SHOULD", "info"
std::optional<Level> parse_level(const std::string& text);  // "must", "should", "info" (any case)
Verdict verdict_when_failed(Level level);

// What came back for one request.
struct Observation {
  enum class Kind {
    response,              // an HTTP (or CoAP, as_http) answer
    refused_at_handshake,  // the TLS/DTLS handshake failed (an alert, a reset)
    no_response,           // connected, sent, then the connection closed, reset or timed out
  };
  Kind kind = Kind::response;
  HttpResponse response;     // kind == response
  std::string failure;       // what the transport said otherwise
  std::optional<Csr> csr;    // the CSR the request carried
  std::optional<Csr> last_csr;  // the scenario's last CSR (a CMC answer's certificate is found by its key)
  std::optional<TlsConnectionInfo> tls;  // the HTTPS connection the answer came on (its state after the answer)
  std::optional<TlsIdentity> client_identity;  // the client certificate and key the request went with (none: anonymous)
  // coaps: what the proxy forwarded upstream for this request's body; nullopt = not visible, and why.
  std::optional<std::vector<UpstreamRecord>> upstream;
  std::string upstream_unavailable;
};

struct JudgeContext {
  // The catalog level of a requirement ID; unknown IDs are MUST (the scenario loader refuses
  // IDs the catalog lacks, so this only happens in unit tests).
  std::function<Level(const std::string& requirement)> level_of;
  std::string default_requirement;  // the scenario's first requirement
  std::map<std::string, std::vector<Certificate>> bags;  // captured /cacerts bags by name
  std::vector<Certificate> trust_anchors;  // the target's: `chains_to: trust-anchors`
  TimePoint now = std::chrono::system_clock::now();  // the target's time: `valid_now` and `chains_to` judge at it
};

struct Judgement {
  std::vector<CheckResult> checks;
  std::vector<Certificate> certificates;  // every certificate of the answer, the issued one first
  std::optional<Certificate> issued;
  std::optional<PrivateKey> server_key;   // serverkeygen's key part, when it parsed as PKCS#8
  std::string extract_problem;            // why no certificates could be read, "" when fine
  Verdict verdict() const;                // the worst check; pass when none
  std::string first_problem() const;      // the first check that did not pass, "" when none
};

// The row an expectation's checks judge (its own `requirement`, else the scenario's first) and the
// level they count at (its `level`, else the row's in the catalog, else MUST).
std::string requirement_of(const Expectation& expectation, const JudgeContext& context);
Level level_of(const Expectation& expectation, const JudgeContext& context);

// `expectation` holds no {{variables}} any more (the runner resolved them).
Judgement judge(const Expectation& expectation, const Observation& observation, const JudgeContext& context);

// The checks of a connect step (and of a send step) on the TLS connection itself: `resumed`,
// `secure_renegotiation`, `renegotiation_requested` and `server_certificate`.
Judgement judge_connection(const Expectation& expectation, const TlsConnectionInfo& tls, const JudgeContext& context);

// Certificates (and a server-generated key) from a certs-only, CMC or multipart answer; the
// certificate whose key is `csr_key_owner`'s comes first. `problem` says why none were found.
void extract_certificates(const HttpResponse& response, const std::optional<Csr>& csr_key_owner, std::vector<Certificate>& certs,
                          std::optional<PrivateKey>& key, std::string& key_problem, std::string& problem);

}  // namespace estlab::conformance
