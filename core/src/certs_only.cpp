#include "estlab/core/certs_only.hpp"

#include "estlab/core/encoding.hpp"

namespace estlab {

Result<CertsOnly> CertsOnly::make(std::vector<Certificate> certificates, std::vector<Crl> crls) {
  ossl::ErrorQueueGuard guard;
  ossl::Pkcs7 p7(PKCS7_new());
  if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1 || PKCS7_content_new(p7.get(), NID_pkcs7_data) != 1) {
    return ossl::error(ErrorCode::internal, "certs-only: cannot build SignedData");
  }
  // Detached frees the empty eContent, so encapContentInfo carries id-data with no content.
  PKCS7_set_detached(p7.get(), 1);
  for (const auto& cert : certificates) {
    if (PKCS7_add_certificate(p7.get(), cert.native()) != 1) {  // takes its own reference
      return ossl::error(ErrorCode::internal, "certs-only: cannot add a certificate");
    }
  }
  for (const auto& crl : crls) {
    if (PKCS7_add_crl(p7.get(), crl.native()) != 1) return ossl::error(ErrorCode::internal, "certs-only: cannot add a CRL");
  }
  CertsOnly result;
  result.der_ = ossl::i2d_bytes(i2d_PKCS7, p7.get());
  if (result.der_.empty()) return ossl::error(ErrorCode::internal, "certs-only: DER encoding failed");
  result.certificates_ = std::move(certificates);
  result.crls_ = std::move(crls);
  return result;
}

Result<CertsOnly> CertsOnly::from_der(ByteView der) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  ossl::Pkcs7 p7(d2i_PKCS7(nullptr, &p, static_cast<long>(der.size())));
  if (!p7) return ossl::error(ErrorCode::invalid_input, "certs-only: not a DER PKCS#7 ContentInfo");
  if (p != der.data() + der.size()) {
    return make_error(ErrorCode::invalid_input, "certs-only: " + std::to_string(der.data() + der.size() - p) +
                                                    " trailing bytes after the PKCS#7 structure");
  }
  if (!PKCS7_type_is_signed(p7.get())) {
    char buffer[128];
    OBJ_obj2txt(buffer, sizeof buffer, p7->type, 0);
    return make_error(ErrorCode::invalid_input, std::string("certs-only: contentType is ") + buffer + ", expected signedData");
  }
  PKCS7_SIGNED* signed_data = p7->d.sign;
  if (signed_data == nullptr) return make_error(ErrorCode::invalid_input, "certs-only: SignedData content is missing");
  int signers = sk_PKCS7_SIGNER_INFO_num(signed_data->signer_info);
  if (signers > 0) {
    return make_error(ErrorCode::invalid_input,
                      "certs-only: " + std::to_string(signers) + " signerInfo(s), expected none (degenerate SignedData)");
  }
  PKCS7* inner = signed_data->contents;
  if (inner == nullptr || OBJ_obj2nid(inner->type) != NID_pkcs7_data) {
    return make_error(ErrorCode::invalid_input, "certs-only: encapsulated content type is not id-data");
  }
  if (inner->d.data != nullptr) {  // RFC 5272 4.1: eContent is omitted, not empty
    return make_error(ErrorCode::invalid_input, "certs-only: encapsulated content is present, expected none");
  }
  CertsOnly result;
  result.der_.assign(der.begin(), der.end());
  for (int i = 0; i < sk_X509_num(signed_data->cert); ++i) {
    result.certificates_.push_back(Certificate::borrow_shared(sk_X509_value(signed_data->cert, i)));
  }
  for (int i = 0; i < sk_X509_CRL_num(signed_data->crl); ++i) {
    result.crls_.push_back(Crl::borrow_shared(sk_X509_CRL_value(signed_data->crl, i)));
  }
  return result;
}

Result<CertsOnly> CertsOnly::parse(ByteView data) {
  auto der = to_der(data, {"PKCS7", "CMS"}, "certs-only");
  if (!der.ok()) return der.error();
  return from_der(*der);
}

std::string CertsOnly::pem() const { return pem_encode("PKCS7", der_); }

std::string CertsOnly::to_text() const {
  std::string out;
  for (const auto& cert : certificates_) {
    out += "subject=" + cert.subject().to_string() + " issuer=" + cert.issuer().to_string() + " serial=" +
           cert.serial_hex() + "\n";
  }
  for (const auto& crl : crls_) out += "crl issuer=" + crl.issuer().to_string() + "\n";
  return out;
}

}  // namespace estlab
