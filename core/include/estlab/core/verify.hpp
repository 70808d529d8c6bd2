// Certificate path validation (RFC 5280, through OpenSSL's verifier) with an explicit time.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "estlab/core/certificate.hpp"
#include "estlab/core/crl.hpp"

namespace estlab {

enum class RevocationCheck { none, leaf, whole_chain };

struct PathValidation {
  std::vector<Certificate> trust_anchors;
  std::vector<Certificate> intermediates;
  std::vector<Crl> crls;
  RevocationCheck revocation = RevocationCheck::none;
  TimePoint at = std::chrono::system_clock::now();  // the validation time is a parameter
  std::optional<std::string> required_eku;         // dotted OID the leaf must carry, checked apart
  std::optional<std::string> purpose;              // OpenSSL purpose name: "sslclient", "sslserver"
  bool strict = false;                             // X509_V_FLAG_X509_STRICT (rejects some field certificates)
};

struct PathVerdict {
  bool valid = false;
  int openssl_code = 0;  // X509_V_ERR_*; 0 when valid
  int error_depth = -1;
  std::string reason;    // OpenSSL's text, e.g. "certificate revoked", "certificate has expired"
  std::vector<Certificate> path;  // leaf first, anchor last, when valid
};

// Validation failures are verdicts, not errors; Error only for a verifier that could not run.
Result<PathVerdict> validate_path(const Certificate& leaf, const PathValidation& options);

}  // namespace estlab
