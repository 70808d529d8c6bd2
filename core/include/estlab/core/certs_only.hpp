// The certs-only CMC Simple PKI Response (RFC 7030 4.1.3, 4.2.3): a degenerate PKCS#7 SignedData
// with no signers and no content, carrying certificates (and possibly CRLs).
#pragma once

#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/crl.hpp"

namespace estlab {

class CertsOnly {
 public:
  static Result<CertsOnly> make(std::vector<Certificate> certificates, std::vector<Crl> crls = {});
  // Decodes and checks the structure: contentType signedData, no signerInfos, id-data without
  // content. Each violation has its own message ("certs-only: 1 signerInfo, expected none").
  static Result<CertsOnly> from_der(ByteView der);
  static Result<CertsOnly> parse(ByteView data);  // DER, PEM ("PKCS7") or base64 (an EST body)
  // The same structural checks, with the same messages, on the DER alone: each certificate and
  // CRL is only checked to be a SEQUENCE, never decoded. For a relay that passes the body on
  // (the coaps proxy), where decoding every certificate's key was a tenth of its CPU.
  static Result<void> check_structure(ByteView der);

  const Bytes& der() const { return der_; }
  std::string pem() const;
  const std::vector<Certificate>& certificates() const { return certificates_; }
  const std::vector<Crl>& crls() const { return crls_; }
  std::string to_text() const;  // one line per certificate: subject, issuer, serial

 private:
  std::vector<Certificate> certificates_;
  std::vector<Crl> crls_;
  Bytes der_;
};

}  // namespace estlab
