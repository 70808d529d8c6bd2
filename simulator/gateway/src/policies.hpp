// Gateway rules kept apart from the admission path in service.cpp: the RA's relinking right
// (RFC 7030 3.7), single-use Basic passwords (RFC 7030 6) and what a serverkeygen CSR asks of the
// key's delivery (RFC 7030 4.4.1.1/4.4.1.2).
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/csr.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/result.hpp"

namespace estlab::gateway {

// RFC 7030 3.7: `leaf` carries id-kp-cmcRA and was signed by one of the EST CA's certificates.
bool is_ra_of_est_ca(const Certificate& leaf, const std::vector<Certificate>& ca_certificates);

// RFC 7030 6: Basic passwords that already obtained a certificate.
class SpentPasswords {
 public:
  bool spent(const std::string& user, const std::string& password) const;
  void spend(const std::string& user, const std::string& password);

 private:
  mutable std::mutex mutex_;
  std::set<std::string> spent_;
};

// RFC 7030 4.5.2: why a CSR does not fit the key type the CA requires (its key, and the
// signature scheme csrattrs lists with it); "" when it fits.
std::string required_key_problem(const Csr& csr, KeyType required);

// What a serverkeygen CSR asks: a plain PKCS#8 key, or one encrypted to a key it names.
struct KeyDelivery {
  enum class Kind { plain, asymmetric, symmetric };
  Kind kind = Kind::plain;
  Bytes key_identifier;                   // the OCTET STRING's content
  std::vector<std::string> capabilities;  // SMIMECapabilities, dotted OIDs
  bool has_capabilities = false;          // the CSR carried SMIMECapabilities (RFC 9148 4.8: without, the key goes plain)
};
// Errors name the attribute that is malformed.
Result<KeyDelivery> read_key_delivery(const Csr& csr);

}  // namespace estlab::gateway
