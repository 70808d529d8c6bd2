#include "estlab/core/certs_only.hpp"

#include "estlab/core/der.hpp"
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

Result<void> CertsOnly::check_structure(ByteView der) {
  auto invalid = [](const std::string& message) { return make_error(ErrorCode::invalid_input, "certs-only: " + message); };
  auto not_content_info = [&](const Error& e) { return invalid("not a DER PKCS#7 ContentInfo (" + e.message + ")"); };
  der::Reader top(der);
  auto info = top.expect(der::kSequence, "ContentInfo");
  if (!info.ok()) return not_content_info(info.error());
  if (!top.empty()) return invalid(std::to_string(top.remaining()) + " trailing bytes after the PKCS#7 structure");
  der::Reader fields(info->content);
  auto type = fields.expect(der::kOid, "ContentInfo contentType");
  if (!type.ok()) return not_content_info(type.error());
  auto type_oid = der::decode_oid(*type, "ContentInfo contentType");
  if (!type_oid.ok()) return not_content_info(type_oid.error());
  if (*type_oid != "1.2.840.113549.1.7.2") {
    const int nid = OBJ_txt2nid(type_oid->c_str());  // the name from_der gives (OBJ_obj2txt)
    return invalid("contentType is " + std::string(nid != NID_undef ? OBJ_nid2ln(nid) : type_oid->c_str()) + ", expected signedData");
  }
  if (fields.empty()) return invalid("SignedData content is missing");
  auto content = fields.expect(0xa0, "ContentInfo content");
  if (!content.ok()) return not_content_info(content.error());
  auto signed_data = der::read_single(content->content, der::kSequence, "SignedData");
  if (!signed_data.ok()) return not_content_info(signed_data.error());
  der::Reader body(signed_data->content);
  if (auto version = body.expect(der::kInteger, "SignedData version"); !version.ok()) return not_content_info(version.error());
  if (auto digests = body.expect(der::kSet, "SignedData digestAlgorithms"); !digests.ok()) return not_content_info(digests.error());
  auto encap = body.expect(der::kSequence, "SignedData encapContentInfo");
  if (!encap.ok()) return not_content_info(encap.error());
  // certificates [0] and crls [1], IMPLICIT SETs of SEQUENCEs: counted, not decoded.
  for (const auto& [tag, what] : {std::pair<std::uint8_t, const char*>{0xa0, "certificate"}, {0xa1, "CRL"}}) {
    if (body.peek_tag() != tag) continue;
    auto set = body.next(what);
    if (!set.ok()) return not_content_info(set.error());
    for (der::Reader items(set->content); !items.empty();)
      if (auto item = items.expect(der::kSequence, what); !item.ok()) return not_content_info(item.error());
  }
  auto signer_infos = body.expect(der::kSet, "SignedData signerInfos");
  if (!signer_infos.ok()) return not_content_info(signer_infos.error());
  if (!body.empty()) return not_content_info(Error{ErrorCode::invalid_input, "SignedData: elements after signerInfos"});
  // The violations in from_der's order: a signer before the encapsulated content.
  int signers = 0;
  for (der::Reader items(signer_infos->content); !items.empty(); ++signers)
    if (auto item = items.next("signerInfo"); !item.ok()) return not_content_info(item.error());
  if (signers > 0) return invalid(std::to_string(signers) + " signerInfo(s), expected none (degenerate SignedData)");
  der::Reader encap_fields(encap->content);
  auto encap_type = encap_fields.expect(der::kOid, "encapContentInfo eContentType");
  if (!encap_type.ok()) return not_content_info(encap_type.error());
  auto encap_oid = der::decode_oid(*encap_type, "encapContentInfo eContentType");
  if (!encap_oid.ok() || *encap_oid != "1.2.840.113549.1.7.1") return invalid("encapsulated content type is not id-data");
  if (!encap_fields.empty()) return invalid("encapsulated content is present, expected none");
  return {};
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
