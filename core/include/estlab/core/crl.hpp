// Certificate revocation lists as values.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/name.hpp"

namespace estlab {

// RFC 5280 CRLReason codes.
enum class RevocationReason : int {
  unspecified = 0,
  key_compromise = 1,
  ca_compromise = 2,
  affiliation_changed = 3,
  superseded = 4,
  cessation_of_operation = 5,
  certificate_hold = 6,
  remove_from_crl = 8,
  privilege_withdrawn = 9,
  aa_compromise = 10,
};
std::string_view to_string(RevocationReason reason);
// "keyCompromise" or "key-compromise" or the number; the error lists the valid names.
Result<RevocationReason> parse_revocation_reason(std::string_view text);

struct RevokedEntry {
  std::string serial_hex;
  TimePoint revoked_at;
  std::optional<RevocationReason> reason;
};

class Crl {
 public:
  static Result<Crl> from_der(ByteView der);
  static Result<Crl> parse(ByteView data);  // DER, PEM ("X509 CRL") or base64
  static Crl borrow_shared(X509_CRL* crl);

  const Bytes& der() const { return der_; }
  std::string pem() const;
  DistinguishedName issuer() const;
  TimePoint this_update() const;
  std::optional<TimePoint> next_update() const;
  std::optional<long long> crl_number() const;
  std::vector<RevokedEntry> entries() const;
  std::optional<RevokedEntry> find(std::string_view serial_hex) const;
  bool signed_by(const PublicKey& issuer_key) const;
  std::string to_text() const;
  X509_CRL* native() const { return crl_.get(); }

 private:
  std::shared_ptr<X509_CRL> crl_;
  Bytes der_;
};

}  // namespace estlab
