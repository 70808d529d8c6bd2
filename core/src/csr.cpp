#include "estlab/core/csr.hpp"

#include <cctype>

#include "estlab/core/encoding.hpp"

namespace estlab {
namespace {

std::shared_ptr<X509_REQ> share(X509_REQ* req) {
  return std::shared_ptr<X509_REQ>(req, ossl::Deleter<X509_REQ_free>{});
}

ossl::ExtensionStack extensions_of(X509_REQ* req) {
  return ossl::ExtensionStack(X509_REQ_get_extensions(req));
}

}  // namespace

Result<Csr> Csr::from_der(ByteView der, SignatureCheck check) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  X509_REQ* raw = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
  if (raw == nullptr) return ossl::error(ErrorCode::invalid_input, "CSR: not a DER PKCS#10 request");
  auto req = share(raw);
  if (p != der.data() + der.size()) {
    return make_error(ErrorCode::invalid_input,
                      "CSR: " + std::to_string(der.data() + der.size() - p) + " trailing bytes after the DER request");
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) return ossl::error(ErrorCode::invalid_input, "CSR: public key cannot be decoded");
  Csr csr;
  csr.req_ = std::move(req);
  csr.der_.assign(der.begin(), der.end());
  csr.signature_valid_ = X509_REQ_verify(csr.req_.get(), key) == 1;
  ERR_clear_error();
  if (check == SignatureCheck::required && !csr.signature_valid_) {
    return make_error(ErrorCode::verify_failed, "CSR signature does not verify");
  }
  return csr;
}

Result<Csr> Csr::parse(ByteView data, SignatureCheck check) {
  auto der = to_der(data, {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}, "CSR");
  if (!der.ok()) return der.error();
  return from_der(*der, check);
}

std::string Csr::pem() const { return pem_encode("CERTIFICATE REQUEST", der_); }

DistinguishedName Csr::subject() const {
  auto name = DistinguishedName::from_native(X509_REQ_get_subject_name(req_.get()));
  return name.ok() ? std::move(name).value() : DistinguishedName{};
}

PublicKey Csr::public_key() const {
  return PublicKey::borrow_shared(X509_REQ_get0_pubkey(req_.get()), X509_REQ_get_X509_PUBKEY(req_.get()));
}

std::string Csr::signature_algorithm() const {
  const X509_ALGOR* alg = nullptr;
  X509_REQ_get0_signature(req_.get(), nullptr, &alg);
  if (alg == nullptr) return {};
  const ASN1_OBJECT* obj = nullptr;
  X509_ALGOR_get0(&obj, nullptr, nullptr, alg);
  int nid = OBJ_obj2nid(obj);
  if (nid != NID_undef) return OBJ_nid2ln(nid);
  char buffer[128];
  OBJ_obj2txt(buffer, sizeof buffer, obj, 1);
  return buffer;
}

std::vector<RawExtension> Csr::requested_extensions() const {
  auto exts = extensions_of(req_.get());
  ERR_clear_error();
  return exts ? ext::read_all(exts.get()) : std::vector<RawExtension>{};
}

std::vector<SubjectAltName> Csr::subject_alt_names() const {
  auto exts = extensions_of(req_.get());
  ERR_clear_error();
  return exts ? ext::read_subject_alt_names(exts.get()) : std::vector<SubjectAltName>{};
}

std::vector<std::string> Csr::requested_extended_key_usages() const {
  auto exts = extensions_of(req_.get());
  ERR_clear_error();
  return exts ? ext::read_extended_key_usages(exts.get()) : std::vector<std::string>{};
}

std::optional<std::uint32_t> Csr::requested_key_usage() const {
  auto exts = extensions_of(req_.get());
  ERR_clear_error();
  if (!exts) return std::nullopt;
  ossl::Asn1BitString bits(static_cast<ASN1_BIT_STRING*>(X509V3_get_d2i(exts.get(), NID_key_usage, nullptr, nullptr)));
  if (!bits) return std::nullopt;
  std::uint32_t out = 0;
  if (bits->length > 0) out = bits->data[0];
  if (bits->length > 1) out |= static_cast<std::uint32_t>(bits->data[1]) << 8;
  return out;
}

std::optional<std::string> Csr::string_attribute(int nid) const {
  int index = X509_REQ_get_attr_by_NID(req_.get(), nid, -1);
  if (index < 0) return std::nullopt;
  X509_ATTRIBUTE* attr = X509_REQ_get_attr(req_.get(), index);
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attr, 0);
  if (value == nullptr) return std::nullopt;
  switch (value->type) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_UTF8STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_T61STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING: {
      unsigned char* utf8 = nullptr;
      int len = ASN1_STRING_to_UTF8(&utf8, value->value.asn1_string);
      if (len < 0) return std::nullopt;
      std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
      OPENSSL_free(utf8);
      return out;
    }
    default: return std::nullopt;
  }
}

std::optional<std::string> Csr::challenge_password() const { return string_attribute(NID_pkcs9_challengePassword); }

std::optional<StringEncoding> Csr::challenge_password_encoding() const {
  int index = X509_REQ_get_attr_by_NID(req_.get(), NID_pkcs9_challengePassword, -1);
  if (index < 0) return std::nullopt;
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(X509_REQ_get_attr(req_.get(), index), 0);
  if (value == nullptr) return std::nullopt;
  if (value->type == V_ASN1_PRINTABLESTRING) return StringEncoding::printable;
  if (value->type == V_ASN1_UTF8STRING) return StringEncoding::utf8;
  return std::nullopt;
}

std::optional<std::string> Csr::unstructured_name() const { return string_attribute(NID_pkcs9_unstructuredName); }
std::optional<std::string> Csr::unstructured_address() const { return string_attribute(NID_pkcs9_unstructuredAddress); }

std::vector<std::string> Csr::attribute_oids() const {
  std::vector<std::string> out;
  for (int i = 0; i < X509_REQ_get_attr_count(req_.get()); ++i) {
    char buffer[128];
    OBJ_obj2txt(buffer, sizeof buffer, X509_ATTRIBUTE_get0_object(X509_REQ_get_attr(req_.get(), i)), 1);
    out.emplace_back(buffer);
  }
  return out;
}

std::optional<Bytes> Csr::attribute_value_der(std::string_view oid) const {
  const ossl::Asn1Object object(OBJ_txt2obj(std::string(oid).c_str(), 1));
  if (!object) return std::nullopt;
  const int index = X509_REQ_get_attr_by_OBJ(req_.get(), object.get(), -1);
  if (index < 0) return std::nullopt;
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(X509_REQ_get_attr(req_.get(), index), 0);
  if (value == nullptr) return std::nullopt;
  Bytes der = ossl::i2d_bytes(i2d_ASN1_TYPE, value);
  if (der.empty()) return std::nullopt;
  return der;
}

std::string Csr::to_text() const {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  X509_REQ_print_ex(bio.get(), req_.get(), XN_FLAG_ONELINE, 0);
  return ossl::bio_to_string(bio.get());
}

CsrBuilder& CsrBuilder::subject(DistinguishedName name) {
  subject_ = std::move(name);
  return *this;
}
CsrBuilder& CsrBuilder::add_subject_alt_name(SubjectAltName san) {
  sans_.push_back(std::move(san));
  return *this;
}
CsrBuilder& CsrBuilder::add_extended_key_usage(std::string oid) {
  ekus_.push_back(std::move(oid));
  return *this;
}
CsrBuilder& CsrBuilder::key_usage(std::uint32_t bits) {
  key_usage_ = bits;
  return *this;
}
CsrBuilder& CsrBuilder::add_extension(RawExtension raw) {
  extra_.push_back(std::move(raw));
  return *this;
}
CsrBuilder& CsrBuilder::challenge_password(std::string value, StringEncoding encoding) {
  challenge_password_ = std::make_pair(std::move(value), encoding);
  return *this;
}
CsrBuilder& CsrBuilder::unstructured_name(std::string value) {
  unstructured_name_ = std::move(value);
  return *this;
}
CsrBuilder& CsrBuilder::unstructured_address(std::string value) {
  unstructured_address_ = std::move(value);
  return *this;
}

CsrBuilder& CsrBuilder::add_attribute(std::string oid, Bytes value_der) {
  attributes_.emplace_back(std::move(oid), std::move(value_der));
  return *this;
}

Result<Csr> CsrBuilder::sign(const PrivateKey& key) const {
  ossl::ErrorQueueGuard guard;
  ossl::X509Req req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  auto name = subject_.to_native();
  if (!name || X509_REQ_set_subject_name(req.get(), name.get()) != 1) {
    return ossl::error(ErrorCode::internal, "CSR: cannot set the subject");
  }
  // A legacy copy takes X509_REQ_set_pubkey's direct path (PublicKey::legacy_copy()).
  ossl::Pkey legacy = key.legacy_copy();
  if (X509_REQ_set_pubkey(req.get(), legacy ? legacy.get() : key.native()) != 1) {
    return ossl::error(ErrorCode::internal, "CSR: cannot set the public key");
  }

  ossl::ExtensionStack exts(sk_X509_EXTENSION_new_null());
  auto push = [&](Result<ossl::X509Extension> ext) -> Result<void> {
    if (!ext.ok()) return ext.error().within("CSR");
    sk_X509_EXTENSION_push(exts.get(), ext->release());  // the stack owns it now
    return {};
  };
  if (!sans_.empty()) {
    if (auto r = push(ext::subject_alt_name(sans_)); !r.ok()) return r.error();
  }
  if (!ekus_.empty()) {
    if (auto r = push(ext::extended_key_usage(ekus_)); !r.ok()) return r.error();
  }
  if (key_usage_) {
    if (auto r = push(ext::key_usage(*key_usage_)); !r.ok()) return r.error();
  }
  for (const auto& raw : extra_) {
    if (auto r = push(ext::raw(raw)); !r.ok()) return r.error();
  }
  if (sk_X509_EXTENSION_num(exts.get()) > 0 && X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    return ossl::error(ErrorCode::internal, "CSR: cannot add the extensionRequest attribute");
  }

  auto add_string = [&](int nid, const std::string& value, int type, const char* what) -> Result<void> {
    if (X509_REQ_add1_attr_by_NID(req.get(), nid, type, reinterpret_cast<const unsigned char*>(value.data()),
                                  static_cast<int>(value.size())) != 1) {
      return ossl::error(ErrorCode::invalid_input, std::string("CSR: cannot add ") + what);
    }
    return {};
  };
  if (challenge_password_ && challenge_password_->second == StringEncoding::printable) {
    for (unsigned char c : challenge_password_->first) {
      bool printable = std::isalnum(c) != 0 && c < 0x80;
      printable = printable || std::string_view(" '()+,-./:=?").find(static_cast<char>(c)) != std::string_view::npos;
      if (!printable) {
        return make_error(ErrorCode::invalid_input, std::string("CSR: challengePassword as PrintableString cannot hold '") +
                                                        static_cast<char>(c) + "'; use UTF8String");
      }
    }
  }
  if (challenge_password_) {
    int type = challenge_password_->second == StringEncoding::printable ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;
    if (auto r = add_string(NID_pkcs9_challengePassword, challenge_password_->first, type, "challengePassword"); !r.ok()) {
      return r.error();
    }
  }
  if (unstructured_name_) {
    if (auto r = add_string(NID_pkcs9_unstructuredName, *unstructured_name_, V_ASN1_UTF8STRING, "unstructuredName"); !r.ok()) {
      return r.error();
    }
  }
  if (unstructured_address_) {
    if (auto r = add_string(NID_pkcs9_unstructuredAddress, *unstructured_address_, V_ASN1_UTF8STRING, "unstructuredAddress");
        !r.ok()) {
      return r.error();
    }
  }

  for (const auto& [oid, value_der] : attributes_) {
    ossl::Asn1Object object(OBJ_txt2obj(oid.c_str(), 1));
    if (!object) return ossl::error(ErrorCode::invalid_input, "CSR: attribute type '" + oid + "' is not an OID");
    const unsigned char* p = value_der.data();
    std::unique_ptr<ASN1_TYPE, ossl::Deleter<ASN1_TYPE_free>> value(d2i_ASN1_TYPE(nullptr, &p, static_cast<long>(value_der.size())));
    if (!value || p != value_der.data() + value_der.size())
      return ossl::error(ErrorCode::invalid_input, "CSR: the value of attribute " + oid + " is not one DER element");
    std::unique_ptr<X509_ATTRIBUTE, ossl::Deleter<X509_ATTRIBUTE_free>> attribute(
        X509_ATTRIBUTE_create_by_OBJ(nullptr, object.get(), value->type, value->value.ptr, -1));
    if (!attribute || X509_REQ_add1_attr(req.get(), attribute.get()) != 1)
      return ossl::error(ErrorCode::internal, "CSR: cannot add attribute " + oid);
  }

  if (X509_REQ_sign(req.get(), key.native(), key.signing_digest()) <= 0) {
    return ossl::error(ErrorCode::internal, "CSR: signing failed");
  }
  Bytes der = ossl::i2d_bytes(i2d_X509_REQ, req.get());
  if (der.empty()) return ossl::error(ErrorCode::internal, "CSR: DER encoding failed");
  // The request as built, not parsed back from its DER: parsing decodes the key with OpenSSL
  // 3.0's decoders and verifies the signature again, five sixths of the cost of building a CSR.
  Csr csr;
  csr.req_ = share(req.release());
  csr.der_ = std::move(der);
  csr.signature_valid_ = true;  // signed just now by the key whose public half it carries
  return csr;
}

Bytes with_corrupted_signature(ByteView der) {
  Bytes out(der.begin(), der.end());
  if (!out.empty()) out.back() ^= 0x01;
  return out;
}

}  // namespace estlab
