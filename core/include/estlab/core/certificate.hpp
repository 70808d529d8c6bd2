// X.509 certificates as immutable values. Parsing is checking: a Certificate exists only if its DER
// parsed completely.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/clock.hpp"
#include "estlab/core/extensions.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/name.hpp"

namespace estlab {

class Certificate {
 public:
  static Result<Certificate> from_der(ByteView der);
  // DER, PEM or base64; the first certificate of a PEM bundle.
  static Result<Certificate> parse(ByteView data);
  // Every certificate of a PEM bundle (or the one DER certificate).
  static Result<std::vector<Certificate>> parse_all(ByteView data);
  static Certificate borrow_shared(X509* cert);  // takes a new reference

  const Bytes& der() const { return der_; }
  std::string pem() const;

  DistinguishedName subject() const;
  DistinguishedName issuer() const;
  std::string serial_hex() const;  // lower-case, even number of digits
  TimePoint not_before() const;
  TimePoint not_after() const;
  bool valid_at(TimePoint t) const { return t >= not_before() && t <= not_after(); }

  std::vector<SubjectAltName> subject_alt_names() const;
  std::vector<std::string> extended_key_usages() const;  // dotted OIDs; empty when there is no extension
  bool has_extended_key_usage(std::string_view oid) const;
  std::optional<std::uint32_t> key_usage() const;         // nullopt when there is no extension
  bool is_ca() const;
  std::optional<int> path_length() const;
  std::vector<std::string> certificate_policies() const;  // dotted OIDs
  std::vector<RawExtension> extensions() const;
  int version() const;                        // 1, 2 or 3 (RFC 5280 4.1.2.1)
  bool has_basic_constraints() const;
  bool has_crl_distribution_points() const;   // RFC 5280 4.2.1.13
  bool has_authority_info_access() const;     // RFC 5280 4.2.2.1
  // The signatureAlgorithm: its name ("ecdsa-with-SHA256") and the digest it hashes with ("SHA256";
  // "" for algorithms without a separate digest, such as Ed25519).
  std::string signature_algorithm() const;
  std::string signature_digest() const;
  // A subjectAltName dNSName (wildcards as RFC 6125 6.4.3 allows) or iPAddress equal to `name`; the
  // subject's commonName does not count (RFC 6125 6.4.4 makes it a last resort a profile may forbid).
  bool carries_name(std::string_view name) const;
  // Signed with a digest current verifiers reject (MD2, MD4, MD5, SHA-1): FB-34.
  bool has_weak_signature() const;

  PublicKey public_key() const;
  bool is_self_issued() const { return subject() == issuer(); }
  bool signed_by(const PublicKey& issuer_key) const;
  bool is_self_signed() const { return is_self_issued() && signed_by(public_key()); }

  std::string sha256_fingerprint() const;  // "ab:cd:..."
  std::string to_text() const;             // `openssl x509 -text` style, for transcripts
  X509* native() const { return cert_.get(); }

  bool operator==(const Certificate& other) const { return der_ == other.der_; }

 private:
  std::shared_ptr<X509> cert_;
  Bytes der_;
};

// ASN.1 time conversions shared by certificates and CRLs.
TimePoint to_time_point(const ASN1_TIME* t);
std::string serial_to_hex(const ASN1_INTEGER* serial);
Result<ossl::Asn1Integer> serial_from_hex(std::string_view hex);
std::string format_time(TimePoint t);  // "2026-11-27T18:00:00Z"

}  // namespace estlab
