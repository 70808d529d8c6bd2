#include "estlab/core/cmc.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "estlab/core/der.hpp"
#include "estlab/core/oids.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab {
namespace {

// TaggedRequest choices, IMPLICIT (RFC 5272's module is IMPLICIT TAGS): tcr [0], crm [1], orm [2].
constexpr std::uint8_t kTcr = 0xa0;
constexpr std::uint8_t kCrm = 0xa1;
constexpr std::uint8_t kOrm = 0xa2;

Error invalid(std::string message) { return make_error(ErrorCode::invalid_input, std::move(message)); }

std::string dotted_of(const ASN1_OBJECT* obj) {
  int needed = OBJ_obj2txt(nullptr, 0, obj, 1);
  if (needed <= 0) return {};
  std::string text(static_cast<std::size_t>(needed) + 1, '\0');
  OBJ_obj2txt(text.data(), needed + 1, obj, 1);
  text.resize(static_cast<std::size_t>(needed));
  return text;
}

// BodyPartID ::= INTEGER (0..4294967295)
Result<std::uint32_t> decode_body_part_id(der::Reader& reader, const std::string& what) {
  auto element = reader.expect(der::kInteger, what);
  if (!element.ok()) return element.error();
  auto value = der::decode_integer(*element);
  if (!value || *value < 0 || *value > std::numeric_limits<std::uint32_t>::max()) {
    return invalid(what + ": not a DER INTEGER in 0..4294967295");
  }
  return static_cast<std::uint32_t>(*value);
}

Result<int> decode_small_integer(const der::Element& element, const std::string& what) {
  auto value = der::decode_integer(element);
  if (!value || *value < std::numeric_limits<int>::min() || *value > std::numeric_limits<int>::max()) {
    return invalid(what + ": not a DER INTEGER in range");
  }
  return static_cast<int>(*value);
}

std::string oid_label(const std::string& dotted) {
  std::string name = oid::short_name(dotted);
  return name == dotted ? dotted : name + " (" + dotted + ")";
}

// --- names

constexpr std::pair<CmcStatusCode, std::string_view> kStatusNames[] = {
    {CmcStatusCode::success, "success"},
    {CmcStatusCode::failed, "failed"},
    {CmcStatusCode::pending, "pending"},
    {CmcStatusCode::no_support, "noSupport"},
    {CmcStatusCode::confirm_required, "confirmRequired"},
    {CmcStatusCode::pop_required, "popRequired"},
    {CmcStatusCode::partial, "partial"},
};

constexpr std::pair<CmcFailInfo, std::string_view> kFailInfoNames[] = {
    {CmcFailInfo::bad_alg, "badAlg"},
    {CmcFailInfo::bad_message_check, "badMessageCheck"},
    {CmcFailInfo::bad_request, "badRequest"},
    {CmcFailInfo::bad_time, "badTime"},
    {CmcFailInfo::bad_cert_id, "badCertId"},
    {CmcFailInfo::unsupported_ext, "unsupportedExt"},
    {CmcFailInfo::must_archive_keys, "mustArchiveKeys"},
    {CmcFailInfo::bad_identity, "badIdentity"},
    {CmcFailInfo::pop_required, "popRequired"},
    {CmcFailInfo::pop_failed, "popFailed"},
    {CmcFailInfo::no_key_reuse, "noKeyReuse"},
    {CmcFailInfo::internal_ca_error, "internalCAError"},
    {CmcFailInfo::try_later, "tryLater"},
    {CmcFailInfo::auth_data_fail, "authDataFail"},
};

template <typename Enum, std::size_t N>
std::string name_of(Enum value, const std::pair<Enum, std::string_view> (&names)[N]) {
  for (const auto& [v, name] : names) {
    if (v == value) return std::string(name);
  }
  return "unknown(" + std::to_string(static_cast<int>(value)) + ")";
}

template <typename Enum, std::size_t N>
Result<Enum> value_of(std::string_view text, const std::pair<Enum, std::string_view> (&names)[N], const char* what) {
  std::string valid;
  for (const auto& [v, name] : names) {
    if (name == text) return v;
    valid += (valid.empty() ? "" : ", ") + std::string(name);
  }
  return invalid(std::string("unknown ") + what + " \"" + std::string(text) + "\" (valid: " + valid + ")");
}

// --- decoding PKIData and PKIResponse

// SEQUENCE OF TaggedAttribute { bodyPartID, attrType, attrValues SET OF ANY }
Result<std::vector<CmcControl>> decode_controls(ByteView content, const std::string& what) {
  std::vector<CmcControl> controls;
  der::Reader reader(content);
  while (!reader.empty()) {
    const std::string item = what + " element " + std::to_string(controls.size() + 1);
    auto attribute = reader.expect(der::kSequence, item);
    if (!attribute.ok()) return attribute.error();
    der::Reader fields(attribute->content);
    CmcControl control;
    auto id = decode_body_part_id(fields, item + " bodyPartID");
    if (!id.ok()) return id.error();
    control.body_part_id = *id;
    auto type = fields.next(item + " attrType");
    if (!type.ok()) return type.error();
    auto dotted = der::decode_oid(*type, item + " attrType");
    if (!dotted.ok()) return dotted.error();
    control.oid = std::move(dotted).value();
    const std::string named = item + " (" + oid_label(control.oid) + ")";
    auto values = fields.expect(der::kSet, named + " attrValues");
    if (!values.ok()) return values.error();
    if (!fields.empty()) return invalid(named + ": unexpected element after attrValues");
    der::Reader elements(values->content);
    while (!elements.empty()) {
      const std::string value_what = named + " value " + std::to_string(control.values_der.size() + 1);
      auto value = elements.next(value_what);
      if (!value.ok()) return value.error();
      if (der::is_constructed(value->tag)) {
        if (auto checked = der::check_tree(value->content); !checked.ok()) return checked.error().within(value_what);
      }
      control.values_der.emplace_back(value->whole.begin(), value->whole.end());
    }
    controls.push_back(std::move(control));
  }
  return controls;
}

// SEQUENCE OF TaggedContentInfo / OtherMsg: counted, each checked to be a well-formed SEQUENCE.
Result<std::size_t> count_sequence_elements(ByteView content, const std::string& what) {
  der::Reader reader(content);
  std::size_t count = 0;
  while (!reader.empty()) {
    const std::string item = what + " element " + std::to_string(count + 1);
    auto element = reader.expect(der::kSequence, item);
    if (!element.ok()) return element.error();
    auto checked = der::check_tree(element->content);
    if (!checked.ok()) return checked.error().within(item);
    ++count;
  }
  return count;
}

Result<PkiData> decode_pki_data(ByteView der) {
  const std::string what = "PKIData";
  auto outer = der::read_single(der, der::kSequence, what);
  if (!outer.ok()) return outer.error();
  der::Reader fields(outer->content);
  auto control_seq = fields.expect(der::kSequence, what + " controlSequence");
  if (!control_seq.ok()) return control_seq.error();
  auto req_seq = fields.expect(der::kSequence, what + " reqSequence");
  if (!req_seq.ok()) return req_seq.error();
  auto cms_seq = fields.expect(der::kSequence, what + " cmsSequence");
  if (!cms_seq.ok()) return cms_seq.error();
  auto other_seq = fields.expect(der::kSequence, what + " otherMsgSequence");
  if (!other_seq.ok()) return other_seq.error();
  if (!fields.empty()) return invalid(what + ": unexpected element after otherMsgSequence");

  PkiData data;
  auto controls = decode_controls(control_seq->content, what + " controlSequence");
  if (!controls.ok()) return controls.error();
  data.controls = std::move(controls).value();

  der::Reader requests(req_seq->content);
  for (std::size_t index = 1; !requests.empty(); ++index) {
    const std::string item = what + " reqSequence element " + std::to_string(index);
    auto request = requests.next(item);
    if (!request.ok()) return request.error();
    if (request->tag == kTcr) {
      der::Reader tcr(request->content);
      auto id = decode_body_part_id(tcr, item + " (tcr) bodyPartID");
      if (!id.ok()) return id.error();
      auto pkcs10 = tcr.expect(der::kSequence, item + " (tcr) certificationRequest");
      if (!pkcs10.ok()) return pkcs10.error();
      if (!tcr.empty()) return invalid(item + " (tcr): unexpected element after certificationRequest");
      if (auto checked = der::check_tree(pkcs10->content); !checked.ok()) {
        return checked.error().within(item + " (tcr) certificationRequest");
      }
      data.requests.push_back({*id, Bytes(pkcs10->whole.begin(), pkcs10->whole.end())});
      continue;
    }
    if ((request->tag & 0xc0) != 0x80) {
      return invalid(item + ": " + der::tag_name(request->tag) +
                     " is not a TaggedRequest choice ([0] tcr, [1] crm, [2] orm)");
    }
    if (der::is_constructed(request->tag)) {
      if (auto checked = der::check_tree(request->content); !checked.ok()) return checked.error().within(item);
    }
    if (request->tag == kCrm) {
      ++data.crmf_requests;
    } else if (request->tag == kOrm) {
      ++data.other_requests;
    } else {
      ++data.unknown_requests;  // a choice RFC 5272 does not define: the gateway decides
    }
  }

  auto cms_count = count_sequence_elements(cms_seq->content, what + " cmsSequence");
  if (!cms_count.ok()) return cms_count.error();
  data.cms_sequence = *cms_count;
  auto other_count = count_sequence_elements(other_seq->content, what + " otherMsgSequence");
  if (!other_count.ok()) return other_count.error();
  data.other_msgs = *other_count;
  return data;
}

// CMCStatusInfoV2 (v2) or CMCStatusInfo (v1), one attrValue.
Result<CmcStatus> decode_status(ByteView value_der, bool v2, const std::string& what) {
  der::Reader top(value_der);
  auto outer = top.expect(der::kSequence, what);
  if (!outer.ok()) return outer.error();
  if (!top.empty()) return invalid(what + ": trailing bytes after the SEQUENCE");
  der::Reader fields(outer->content);
  CmcStatus status;
  auto code = fields.expect(der::kInteger, what + " cMCStatus");
  if (!code.ok()) return code.error();
  auto code_value = decode_small_integer(*code, what + " cMCStatus");
  if (!code_value.ok()) return code_value.error();
  status.status = static_cast<CmcStatusCode>(*code_value);

  auto body_list = fields.expect(der::kSequence, what + " bodyList");
  if (!body_list.ok()) return body_list.error();
  der::Reader references(body_list->content);
  while (!references.empty()) {
    const std::string item = what + " bodyList element " + std::to_string(status.body_parts.size() + 1);
    if (v2 && references.peek_tag() == der::kSequence) {
      // bodyPartPath: the path down to a nested body part; its last element names that part.
      auto path = references.next(item);
      if (!path.ok()) return path.error();
      der::Reader ids(path->content);
      std::optional<std::uint32_t> last;
      while (!ids.empty()) {
        auto id = decode_body_part_id(ids, item + " bodyPartPath");
        if (!id.ok()) return id.error();
        last = *id;
      }
      if (!last) return invalid(item + ": empty bodyPartPath");
      status.body_parts.push_back(*last);
      continue;
    }
    auto id = decode_body_part_id(references, item);
    if (!id.ok()) return id.error();
    status.body_parts.push_back(*id);
  }
  if (status.body_parts.empty()) return invalid(what + ": bodyList is empty (SIZE (1..MAX))");

  if (fields.peek_tag() == der::kUtf8String) {
    auto text = fields.next(what + " statusString");
    if (!text.ok()) return text.error();
    status.text = std::string(as_chars(text->content));
  }
  if (!fields.empty()) {
    auto other = fields.next(what + " otherInfo");
    if (!other.ok()) return other.error();
    if (other->tag == der::kInteger) {
      auto info = decode_small_integer(*other, what + " failInfo");
      if (!info.ok()) return info.error();
      status.fail_info = static_cast<CmcFailInfo>(*info);
    } else if (other->tag == der::kSequence) {
      if (auto checked = der::check_tree(other->content); !checked.ok()) return checked.error().within(what + " otherInfo");
      // pendInfo is SEQUENCE { OCTET STRING, GeneralizedTime }; extendedFailInfo is not kept.
      der::Reader pend(other->content);
      auto token = pend.expect(der::kOctetString, what + " pendToken");
      if (token.ok()) {
        if (auto time = pend.expect(0x18, what + " pendTime"); time.ok())
          status.pend_info = CmcStatus::PendInfo{Bytes(token->content.begin(), token->content.end()), std::string(as_chars(time->content))};
      }
    } else {
      return invalid(what + " otherInfo: " + der::tag_name(other->tag) + " is not failInfo, pendInfo or extendedFailInfo");
    }
  }
  if (!fields.empty()) return invalid(what + ": unexpected element after otherInfo");
  return status;
}

Result<PkiResponse> decode_pki_response(ByteView der) {
  const std::string what = "PKIResponse";
  auto outer = der::read_single(der, der::kSequence, what);
  if (!outer.ok()) return outer.error();
  der::Reader fields(outer->content);
  auto control_seq = fields.expect(der::kSequence, what + " controlSequence");
  if (!control_seq.ok()) return control_seq.error();
  auto cms_seq = fields.expect(der::kSequence, what + " cmsSequence");
  if (!cms_seq.ok()) return cms_seq.error();
  auto other_seq = fields.expect(der::kSequence, what + " otherMsgSequence");
  if (!other_seq.ok()) return other_seq.error();
  if (!fields.empty()) return invalid(what + ": unexpected element after otherMsgSequence");

  PkiResponse response;
  auto controls = decode_controls(control_seq->content, what + " controlSequence");
  if (!controls.ok()) return controls.error();
  response.controls = std::move(controls).value();
  for (std::size_t i = 0; i < response.controls.size(); ++i) {
    const auto& control = response.controls[i];
    bool v2 = control.oid == oid::cmc_status_info_v2;
    if (!v2 && control.oid != oid::cmc_status_info) continue;
    for (std::size_t j = 0; j < control.values_der.size(); ++j) {
      auto status = decode_status(control.values_der[j], v2,
                                  what + " control " + std::to_string(i + 1) + (v2 ? " statusInfoV2" : " statusInfo") +
                                      " value " + std::to_string(j + 1));
      if (!status.ok()) return status.error();
      response.statuses.push_back(std::move(status).value());
    }
  }
  auto cms_count = count_sequence_elements(cms_seq->content, what + " cmsSequence");
  if (!cms_count.ok()) return cms_count.error();
  response.cms_sequence = *cms_count;
  auto other_count = count_sequence_elements(other_seq->content, what + " otherMsgSequence");
  if (!other_count.ok()) return other_count.error();
  response.other_msgs = *other_count;
  return response;
}

// --- encoding

Result<Bytes> encode_control(const CmcControl& control, std::size_t index) {
  const std::string what = "control " + std::to_string(index);
  Bytes oid = der::encode_oid(control.oid);
  if (oid.empty()) return invalid(what + ": \"" + control.oid + "\" is not a dotted OID");
  for (std::size_t i = 0; i < control.values_der.size(); ++i) {
    auto checked = der::check_one_element(control.values_der[i]);
    if (!checked.ok()) return checked.error().within(what + " value " + std::to_string(i + 1));
  }
  Bytes content = der::encode_integer(control.body_part_id);
  der::append(content, oid);
  der::append(content, der::encode_set_of(control.values_der));
  return der::encode_sequence(content);
}

Result<Bytes> encode_status_v2(const CmcStatus& status) {
  if (status.body_parts.empty()) return invalid("CMC status: bodyList is empty (SIZE (1..MAX))");
  Bytes content = der::encode_integer(static_cast<int>(status.status));
  Bytes body_list;
  for (auto id : status.body_parts) der::append(body_list, der::encode_integer(id));
  der::append(content, der::encode_sequence(body_list));
  if (!status.text.empty()) der::append(content, der::encode_utf8_string(status.text));
  if (status.fail_info) {
    der::append(content, der::encode_integer(static_cast<int>(*status.fail_info)));
  } else if (status.pend_info) {
    Bytes pend = der::encode_octet_string(status.pend_info->token);
    der::append(pend, der::encode_tlv(0x18, as_bytes(status.pend_info->time)));  // GeneralizedTime
    der::append(content, der::encode_sequence(pend));
  }
  return der::encode_sequence(content);
}

// --- CMS

// ContentInfo -> SignedData -> eContent of the expected type.
struct SignedContent {
  ossl::Cms cms;
  Bytes econtent;
};

Result<SignedContent> open_signed_data(ByteView der, std::string_view expected_type, const std::string& what) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  ossl::Cms cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!cms) return ossl::error(ErrorCode::invalid_input, what + ": not a DER CMS ContentInfo");
  if (p != der.data() + der.size()) {
    return invalid(what + ": " + std::to_string(der.data() + der.size() - p) + " trailing bytes after the ContentInfo");
  }
  const ASN1_OBJECT* type = CMS_get0_type(cms.get());
  if (OBJ_obj2nid(type) != NID_pkcs7_signed) {
    return invalid(what + ": contentType is " + oid_label(dotted_of(type)) + ", expected signedData");
  }
  const ASN1_OBJECT* econtent_type = CMS_get0_eContentType(cms.get());
  std::string dotted = econtent_type != nullptr ? dotted_of(econtent_type) : std::string{};
  if (dotted != expected_type) {
    return invalid(what + ": eContentType is " + (dotted.empty() ? std::string("missing") : oid_label(dotted)) +
                   ", expected " + oid_label(std::string(expected_type)));
  }
  ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
  if (content == nullptr || *content == nullptr) return invalid(what + ": eContent is absent");
  const unsigned char* data = ASN1_STRING_get0_data(*content);
  int length = ASN1_STRING_length(*content);
  SignedContent result{std::move(cms), Bytes(data, data + std::max(length, 0))};
  return result;
}

std::vector<Certificate> certificates_of(CMS_ContentInfo* cms) {
  std::vector<Certificate> out;
  ossl::X509Stack certs(CMS_get1_certs(cms));
  ERR_clear_error();
  if (!certs) return out;
  for (int i = 0; i < sk_X509_num(certs.get()); ++i) out.push_back(Certificate::borrow_shared(sk_X509_value(certs.get(), i)));
  return out;
}

// A certificate for `key` whose only job is to carry `key_id` as subjectKeyIdentifier: OpenSSL's
// CMS finds and names signers through certificates, even when the signer has none (RFC 5272
// 3.2). It must be signed to be encodable (OpenSSL hashes it while caching its extensions), but
// by whom does not matter: the building side signs with the request key, the checking side with a
// throwaway key.
Result<ossl::X509Ptr> key_id_certificate(EVP_PKEY* key, ByteView key_id, const PrivateKey& signer) {
  ossl::X509Ptr cert(X509_new());
  ossl::Asn1Integer serial(ASN1_INTEGER_new());
  ossl::X509Name name(X509_NAME_new());
  ossl::Asn1OctetString ski(ASN1_OCTET_STRING_new());
  if (!cert || !serial || !name || !ski) return ossl::error(ErrorCode::internal, "CMC: out of memory");
  static const unsigned char kCn[] = "estlab CMC request key";
  bool ok = X509_set_version(cert.get(), X509_VERSION_3) == 1 && ASN1_INTEGER_set(serial.get(), 1) == 1 &&
            X509_set_serialNumber(cert.get(), serial.get()) == 1 &&
            X509_NAME_add_entry_by_NID(name.get(), NID_commonName, MBSTRING_UTF8, kCn, -1, -1, 0) == 1 &&
            X509_set_subject_name(cert.get(), name.get()) == 1 && X509_set_issuer_name(cert.get(), name.get()) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24) != nullptr &&
            X509_set_pubkey(cert.get(), key) == 1 &&
            ASN1_OCTET_STRING_set(ski.get(), key_id.data(), static_cast<int>(key_id.size())) == 1 &&
            X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, ski.get(), 0, X509V3_ADD_DEFAULT) == 1;
  if (!ok) return ossl::error(ErrorCode::internal, "CMC: cannot build the signer-key certificate");
  if (X509_sign(cert.get(), signer.native(), signer.signing_digest()) <= 0) {
    return ossl::error(ErrorCode::internal, "CMC: cannot sign the signer-key certificate");
  }
  return cert;
}

// subjectKeyIdentifier by RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING.
Result<Bytes> key_identifier(EVP_PKEY* key) {
  X509_PUBKEY* spki = nullptr;
  if (X509_PUBKEY_set(&spki, key) != 1) return ossl::error(ErrorCode::internal, "CMC: cannot encode the public key");
  const unsigned char* bits = nullptr;
  int bits_length = 0;
  X509_PUBKEY_get0_param(nullptr, &bits, &bits_length, nullptr, spki);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_length = 0;
  bool ok = bits != nullptr && EVP_Digest(bits, static_cast<std::size_t>(bits_length), md, &md_length, EVP_sha1(), nullptr) == 1;
  X509_PUBKEY_free(spki);
  if (!ok) return ossl::error(ErrorCode::internal, "CMC: cannot hash the public key");
  return Bytes(md, md + md_length);
}

// Ed25519 signs without a separate digest, but CMS still names one (RFC 8419: SHA-512).
const EVP_MD* cms_digest(const PrivateKey& key) {
  const EVP_MD* md = key.signing_digest();
  return md != nullptr ? md : EVP_sha512();
}

// SignedData over `content` of type `econtent_type`, one signer, `certificates` attached (each once).
Result<Bytes> sign_cms(ByteView content, std::string_view econtent_type, const PrivateKey& key, X509* signer,
                       bool by_key_id, const std::vector<Certificate>& certificates, const std::string& what) {
  ossl::ErrorQueueGuard guard;
  ossl::Cms cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, CMS_PARTIAL | CMS_BINARY));
  if (!cms) return ossl::error(ErrorCode::internal, what + ": cannot start SignedData");
  ossl::Asn1Object type(OBJ_txt2obj(std::string(econtent_type).c_str(), 1));
  // Set before the signer: the contentType signed attribute is taken from it when signing.
  if (!type || CMS_set1_eContentType(cms.get(), type.get()) != 1) {
    return ossl::error(ErrorCode::internal, what + ": cannot set eContentType");
  }
  // Certificates are attached below, deduplicated: OpenSSL 3.0 refuses a certificate twice.
  unsigned int flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_NOCERTS | (by_key_id ? CMS_USE_KEYID : 0u);
  if (CMS_add1_signer(cms.get(), signer, key.native(), cms_digest(key), flags) == nullptr) {
    return ossl::error(ErrorCode::invalid_input, what + ": cannot add the signer (does the key match the certificate?)");
  }
  std::vector<Bytes> attached;
  for (const auto& cert : certificates) {
    if (std::find(attached.begin(), attached.end(), cert.der()) != attached.end()) continue;
    if (CMS_add1_cert(cms.get(), cert.native()) != 1) return ossl::error(ErrorCode::internal, what + ": cannot add a certificate");
    attached.push_back(cert.der());
  }
  ossl::Bio data(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
  if (!data || CMS_final(cms.get(), data.get(), nullptr, CMS_BINARY) != 1) {
    // OpenSSL 3.0's CMS cannot sign with EdDSA (no digest to pair with the signed attributes).
    if (key.signing_digest() == nullptr) {
      return ossl::error(ErrorCode::unsupported, what + ": this OpenSSL cannot sign CMS with " + key.algorithm());
    }
    return ossl::error(ErrorCode::internal, what + ": signing failed");
  }
  Bytes der = ossl::i2d_bytes(i2d_CMS_ContentInfo, cms.get());
  if (der.empty()) return ossl::error(ErrorCode::internal, what + ": DER encoding failed");
  return der;
}

// Verifies every signerInfo (signed attributes and message digest) against the certificates in
// the message and `extra`; the signer's chain is not checked here.
CmsSignatureCheck check_signature(CMS_ContentInfo* cms, STACK_OF(X509) * extra,
                                  const std::vector<std::pair<X509*, std::uint32_t>>& request_keys) {
  CmsSignatureCheck check;
  STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(cms);
  int count = sk_CMS_SignerInfo_num(signers);
  if (count <= 0) {
    check.detail = "SignedData has no signerInfo";
    return check;
  }
  ossl::ErrorQueueGuard guard;
  ossl::Bio sink(BIO_new(BIO_s_null()));
  check.verified = CMS_verify(cms, extra, nullptr, nullptr, sink.get(), CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
  std::string reasons = ossl::drain_errors();

  // The first signer names who signed; CMS_verify has set its certificate when it found one.
  X509* signer_cert = nullptr;
  CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(signers, 0), nullptr, &signer_cert, nullptr, nullptr);
  std::string who;
  for (const auto& [cert, body_part] : request_keys) {
    if (signer_cert != nullptr && signer_cert == cert) {
      check.signed_with_request_key = true;
      who = "the key of request body part " + std::to_string(body_part);
    }
  }
  if (signer_cert != nullptr && !check.signed_with_request_key) {
    check.signer = Certificate::borrow_shared(signer_cert);
    who = check.signer->subject().to_string();
  }
  std::string signers_text = count == 1 ? "1 signerInfo" : std::to_string(count) + " signerInfos";
  if (check.verified) {
    check.detail = signers_text + " verified; signer: " + who;
  } else {
    check.detail = signers_text + " did not verify" + (who.empty() ? std::string{} : " (signer: " + who + ")") +
                   (reasons.empty() ? std::string{} : ": " + reasons);
  }
  return check;
}

}  // namespace

std::string to_string(CmcStatusCode code) { return name_of(code, kStatusNames); }
std::string to_string(CmcFailInfo info) { return name_of(info, kFailInfoNames); }
Result<CmcStatusCode> parse_cmc_status(std::string_view name) { return value_of(name, kStatusNames, "CMC status"); }
Result<CmcFailInfo> parse_cmc_fail_info(std::string_view name) { return value_of(name, kFailInfoNames, "CMC failInfo"); }

Result<Bytes> make_full_pki_request(const Csr& csr, const PrivateKey& signer_key, const Certificate* signer_cert,
                                    std::vector<CmcControl> extra_controls) {
  const std::string what = "CMC Full PKI Request";
  constexpr std::uint32_t kRequestBodyPart = 1;
  Bytes controls;
  std::vector<std::uint32_t> ids{kRequestBodyPart};
  for (std::size_t i = 0; i < extra_controls.size(); ++i) {
    // RFC 5272 3.2.2: body part IDs are unique within one PKIData.
    if (std::find(ids.begin(), ids.end(), extra_controls[i].body_part_id) != ids.end()) {
      return invalid(what + ": control " + std::to_string(i + 1) + " reuses body part ID " +
                     std::to_string(extra_controls[i].body_part_id));
    }
    ids.push_back(extra_controls[i].body_part_id);
    auto control = encode_control(extra_controls[i], i + 1);
    if (!control.ok()) return control.error().within(what);
    der::append(controls, *control);
  }
  Bytes tcr = der::encode_integer(kRequestBodyPart);
  der::append(tcr, csr.der());
  Bytes content = der::encode_sequence(controls);
  der::append(content, der::encode_sequence(der::encode_tlv(kTcr, tcr)));
  der::append(content, der::encode_sequence({}));
  der::append(content, der::encode_sequence({}));
  Bytes pki_data = der::encode_sequence(content);

  if (signer_cert != nullptr) {
    return sign_cms(pki_data, oid::cct_pki_data, signer_key, signer_cert->native(), false, {*signer_cert}, what);
  }
  ossl::ErrorQueueGuard guard;
  auto key_id = key_identifier(signer_key.native());
  if (!key_id.ok()) return key_id.error();
  auto cert = key_id_certificate(signer_key.native(), *key_id, signer_key);
  if (!cert.ok()) return cert.error();
  // CMS_USE_KEYID names the signer by this certificate's SKI; CMS_NOCERTS keeps it out of the message.
  return sign_cms(pki_data, oid::cct_pki_data, signer_key, cert->get(), true, {}, what);
}

Result<PkiData> parse_full_pki_request(ByteView der) {
  const std::string what = "CMC Full PKI Request";
  auto signed_content = open_signed_data(der, oid::cct_pki_data, what);
  if (!signed_content.ok()) return signed_content.error();
  auto data = decode_pki_data(signed_content->econtent);
  if (!data.ok()) return data.error().within(what);
  CMS_ContentInfo* cms = signed_content->cms.get();
  data->certificates = certificates_of(cms);

  // A signer without a certificate is named by a request's key (RFC 5272 3.2): offer OpenSSL one
  // stand-in certificate per request key, under the SKI the CSR asks for and under method 1's.
  ossl::ErrorQueueGuard guard;
  ossl::X509Stack extra(sk_X509_new_null());
  std::vector<std::pair<X509*, std::uint32_t>> request_keys;
  std::optional<PrivateKey> throwaway;
  if (!data->requests.empty()) {
    auto generated = PrivateKey::generate(KeyType::ec_p256);
    if (!generated.ok()) return generated.error().within(what);
    throwaway = std::move(generated).value();
  }
  // Each request key costs a signature or two below; a body is bounded in size, not in requests.
  constexpr std::size_t kMaxRequestsForSignerLookup = 16;
  std::size_t looked_up = 0;
  for (const auto& request : data->requests) {
    if (++looked_up > kMaxRequestsForSignerLookup) break;
    auto csr = Csr::from_der(request.pkcs10_der, Csr::SignatureCheck::skip);
    if (!csr.ok()) continue;  // the gateway reports a bad CSR; here it just cannot name a signer
    PublicKey public_key = csr->public_key();
    EVP_PKEY* key = public_key.native();
    std::vector<Bytes> key_ids;
    if (auto id = key_identifier(key); id.ok()) key_ids.push_back(std::move(id).value());
    for (const auto& ext : csr->requested_extensions()) {
      if (ext.oid != oid::subject_key_identifier) continue;
      const unsigned char* p = ext.value_der.data();
      ossl::Asn1OctetString ski(d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(ext.value_der.size())));
      if (!ski) continue;
      const unsigned char* bytes = ASN1_STRING_get0_data(ski.get());
      key_ids.emplace_back(bytes, bytes + ASN1_STRING_length(ski.get()));
    }
    for (const auto& key_id : key_ids) {
      auto cert = key_id_certificate(key, key_id, *throwaway);
      if (!cert.ok() || !extra) continue;
      X509* raw = cert->get();
      if (sk_X509_push(extra.get(), raw) <= 0) continue;
      (void)cert->release();  // the stack owns it now
      request_keys.emplace_back(raw, request.body_part_id);
    }
  }
  ERR_clear_error();
  data->signature = check_signature(cms, extra.get(), request_keys);
  return data;
}

Result<Bytes> make_full_pki_response(const CmcStatus& status, const std::vector<Certificate>& issued_and_chain,
                                     const PrivateKey& signer_key, const Certificate& signer_cert) {
  return make_full_pki_response(std::vector<CmcStatus>{status}, issued_and_chain, signer_key, signer_cert);
}

Result<Bytes> make_full_pki_response(const std::vector<CmcStatus>& statuses,
                                     const std::vector<Certificate>& issued_and_chain, const PrivateKey& signer_key,
                                     const Certificate& signer_cert) {
  const std::string what = "CMC Full PKI Response";
  CmcControl control{1, std::string(oid::cmc_status_info_v2), {}};
  for (const auto& status : statuses) {
    auto value = encode_status_v2(status);
    if (!value.ok()) return value.error().within(what);
    control.values_der.push_back(std::move(value).value());
  }
  Bytes controls;
  if (!statuses.empty()) {
    auto encoded = encode_control(control, 1);
    if (!encoded.ok()) return encoded.error().within(what);
    controls = std::move(encoded).value();
  }
  Bytes content = der::encode_sequence(controls);
  der::append(content, der::encode_sequence({}));
  der::append(content, der::encode_sequence({}));
  std::vector<Certificate> certificates = issued_and_chain;
  certificates.push_back(signer_cert);  // skipped by sign_cms when already among them
  return sign_cms(der::encode_sequence(content), oid::cct_pki_response, signer_key, signer_cert.native(), false,
                  certificates, what);
}

Result<PkiResponse> parse_full_pki_response(ByteView der) {
  const std::string what = "CMC Full PKI Response";
  auto signed_content = open_signed_data(der, oid::cct_pki_response, what);
  if (!signed_content.ok()) return signed_content.error();
  auto response = decode_pki_response(signed_content->econtent);
  if (!response.ok()) return response.error().within(what);
  response->certificates = certificates_of(signed_content->cms.get());
  response->signature = check_signature(signed_content->cms.get(), nullptr, {});
  return response;
}

std::string to_text(const CmcStatus& status) {
  std::string out = to_string(status.status) + " bodyList=";
  for (std::size_t i = 0; i < status.body_parts.size(); ++i) out += (i == 0 ? "" : ",") + std::to_string(status.body_parts[i]);
  if (status.fail_info) out += " failInfo=" + to_string(*status.fail_info);
  if (!status.text.empty()) {
    // The peer chose this text: escape it so it cannot forge lines of a report.
    std::string text;
    for (unsigned char c : status.text) {
      if (c == '"' || c == '\\') text += '\\', text += static_cast<char>(c);
      else if (c < 0x20 || c == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "\\x%02x", c);
        text += hex;
      } else text += static_cast<char>(c);
    }
    out += " statusString=\"" + text + "\"";
  }
  return out;
}

std::string to_text(const PkiResponse& response) {
  std::string out;
  for (const auto& status : response.statuses) out += "status " + to_text(status) + "\n";
  for (const auto& cert : response.certificates) {
    out += "certificate subject=" + cert.subject().to_string() + " issuer=" + cert.issuer().to_string() +
           " serial=" + cert.serial_hex() + "\n";
  }
  out += "signature " + response.signature.detail + "\n";
  return out;
}

}  // namespace estlab
