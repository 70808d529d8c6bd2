// Certificate profiles: what the CA puts into a certificate besides the subject and key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/clock.hpp"

namespace estlab::ca {

struct CertificateProfile {
  std::string name = "device";
  Seconds validity{365LL * 24 * 3600};
  Seconds backdate{300};                      // notBefore = now - backdate, so skewed clocks still accept it
  std::optional<std::uint32_t> key_usage;     // nullopt: digitalSignature (+ keyEncipherment for RSA)
  std::vector<std::string> extended_key_usages;  // empty: no EKU extension at all
  bool copy_requested_eku = false;            // use the CSR's requested EKUs instead of the list above
  bool copy_requested_san = true;             // put the CSR's SANs in the certificate
  std::vector<std::string> policies;          // certificatePolicies OIDs
  bool ca = false;
  std::optional<int> path_length;

  // The profiles the lab uses. Each is a plain value: copy and change to vary.
  static CertificateProfile device();       // clientAuth
  static CertificateProfile tls_server();   // serverAuth
  static CertificateProfile officer();      // clientAuth + the officer-role policy (PG-AUTH-3)
  static CertificateProfile cmc_ra();       // only id-kp-cmcRA (PG-RA-1)
  static CertificateProfile no_eku();       // no extendedKeyUsage extension
  static CertificateProfile sub_ca(std::optional<int> path_length = 0);
};

}  // namespace estlab::ca
