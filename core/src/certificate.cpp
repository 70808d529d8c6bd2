#include "estlab/core/certificate.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "estlab/core/encoding.hpp"
#include "estlab/core/oids.hpp"

namespace estlab {
namespace {

std::shared_ptr<X509> share(X509* cert) { return std::shared_ptr<X509>(cert, ossl::Deleter<X509_free>{}); }

}  // namespace

TimePoint to_time_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string serial_to_hex(const ASN1_INTEGER* serial) {
  ossl::BigNum bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  Bytes bytes(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), bytes.data());
  if (bytes.empty()) return "00";
  return to_hex(bytes);
}

Result<ossl::Asn1Integer> serial_from_hex(std::string_view hex) {
  auto bytes = from_hex(hex);
  if (!bytes.ok()) return bytes.error().within("serial '" + std::string(hex) + "'");
  ossl::BigNum bn(BN_bin2bn(bytes->data(), static_cast<int>(bytes->size()), nullptr));
  if (!bn) return ossl::error(ErrorCode::internal, "serial: BN_bin2bn failed");
  ossl::Asn1Integer serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return ossl::error(ErrorCode::internal, "serial: BN_to_ASN1_INTEGER failed");
  return serial;
}

std::string format_time(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

Result<Certificate> Certificate::from_der(ByteView der) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  X509* raw = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (raw == nullptr) return ossl::error(ErrorCode::invalid_input, "certificate: not a DER X.509 certificate");
  auto cert = share(raw);
  if (p != der.data() + der.size()) {
    // A "TRUSTED CERTIFICATE" carries OpenSSL trust settings after the certificate: keep the certificate.
    const unsigned char* aux = der.data();
    ossl::X509Ptr with_trust(d2i_X509_AUX(nullptr, &aux, static_cast<long>(der.size())));
    ERR_clear_error();
    if (with_trust && aux == der.data() + der.size()) return borrow_shared(with_trust.get());
    return make_error(ErrorCode::invalid_input, "certificate: " + std::to_string(der.data() + der.size() - p) +
                                                    " trailing bytes after the DER certificate");
  }
  Certificate out;
  out.cert_ = std::move(cert);
  out.der_.assign(der.begin(), der.end());
  return out;
}

Result<Certificate> Certificate::parse(ByteView data) {
  auto der = to_der(data, {"CERTIFICATE", "TRUSTED CERTIFICATE"}, "certificate");
  if (!der.ok()) return der.error();
  return from_der(*der);
}

Result<std::vector<Certificate>> Certificate::parse_all(ByteView data) {
  std::vector<Certificate> out;
  if (detect_encoding(data) == Encoding::pem) {
    auto blocks = pem_decode_all(as_chars(data));
    if (!blocks.ok()) return blocks.error();
    for (std::size_t i = 0; i < blocks->size(); ++i) {
      const auto& block = (*blocks)[i];
      if (block.label != "CERTIFICATE" && block.label != "TRUSTED CERTIFICATE") continue;
      auto cert = from_der(block.der);
      if (!cert.ok()) return cert.error().within("PEM block " + std::to_string(i + 1));
      out.push_back(std::move(cert).value());
    }
    if (out.empty()) return make_error(ErrorCode::invalid_input, "certificate bundle: no CERTIFICATE block");
    return out;
  }
  auto one = parse(data);
  if (!one.ok()) return one.error();
  out.push_back(std::move(one).value());
  return out;
}

Certificate Certificate::borrow_shared(X509* cert) {
  X509_up_ref(cert);
  Certificate out;
  out.cert_ = share(cert);
  out.der_ = ossl::i2d_bytes(i2d_X509, cert);
  return out;
}

std::string Certificate::pem() const { return pem_encode("CERTIFICATE", der_); }

DistinguishedName Certificate::subject() const {
  auto name = DistinguishedName::from_native(X509_get_subject_name(cert_.get()));
  return name.ok() ? std::move(name).value() : DistinguishedName{};
}

DistinguishedName Certificate::issuer() const {
  auto name = DistinguishedName::from_native(X509_get_issuer_name(cert_.get()));
  return name.ok() ? std::move(name).value() : DistinguishedName{};
}

std::string Certificate::serial_hex() const { return serial_to_hex(X509_get0_serialNumber(cert_.get())); }
TimePoint Certificate::not_before() const { return to_time_point(X509_get0_notBefore(cert_.get())); }
TimePoint Certificate::not_after() const { return to_time_point(X509_get0_notAfter(cert_.get())); }

std::vector<SubjectAltName> Certificate::subject_alt_names() const {
  return ext::read_subject_alt_names(X509_get0_extensions(cert_.get()));
}

std::vector<std::string> Certificate::extended_key_usages() const {
  return ext::read_extended_key_usages(X509_get0_extensions(cert_.get()));
}

bool Certificate::has_extended_key_usage(std::string_view oid_text) const {
  std::string wanted = oid::to_dotted(oid_text);
  for (const auto& o : extended_key_usages()) {
    if (o == wanted) return true;
  }
  return false;
}

std::optional<std::uint32_t> Certificate::key_usage() const {
  std::uint32_t bits = X509_get_key_usage(cert_.get());
  if (bits == UINT32_MAX) return std::nullopt;
  return bits;
}

// RFC 5280 4.2.1.9: only basicConstraints with cA TRUE makes a CA (X509_check_ca also counts
// keyCertSign alone and v1 self-signed certificates).
bool Certificate::is_ca() const {
  const std::uint32_t flags = X509_get_extension_flags(cert_.get());
  return (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
}

std::optional<int> Certificate::path_length() const {
  long len = X509_get_pathlen(cert_.get());
  if (len < 0) return std::nullopt;
  return static_cast<int>(len);
}

std::vector<std::string> Certificate::certificate_policies() const {
  std::vector<std::string> out;
  ossl::CertPolicies policies(
      static_cast<CERTIFICATEPOLICIES*>(X509_get_ext_d2i(cert_.get(), NID_certificate_policies, nullptr, nullptr)));
  if (!policies) return out;
  for (int i = 0; i < sk_POLICYINFO_num(policies.get()); ++i) {
    char buffer[128];
    OBJ_obj2txt(buffer, sizeof buffer, sk_POLICYINFO_value(policies.get(), i)->policyid, 1);
    out.emplace_back(buffer);
  }
  return out;
}

std::vector<RawExtension> Certificate::extensions() const { return ext::read_all(X509_get0_extensions(cert_.get())); }

int Certificate::version() const { return static_cast<int>(X509_get_version(cert_.get())) + 1; }

bool Certificate::has_basic_constraints() const { return (X509_get_extension_flags(cert_.get()) & EXFLAG_BCONS) != 0; }
bool Certificate::has_crl_distribution_points() const { return X509_get_ext_by_NID(cert_.get(), NID_crl_distribution_points, -1) >= 0; }
bool Certificate::has_authority_info_access() const { return X509_get_ext_by_NID(cert_.get(), NID_info_access, -1) >= 0; }

std::string Certificate::signature_algorithm() const {
  const int nid = X509_get_signature_nid(cert_.get());
  if (nid != NID_undef) return OBJ_nid2ln(nid);
  const X509_ALGOR* algorithm = nullptr;
  X509_get0_signature(nullptr, &algorithm, cert_.get());
  const ASN1_OBJECT* object = nullptr;
  X509_ALGOR_get0(&object, nullptr, nullptr, algorithm);
  char buffer[128];
  OBJ_obj2txt(buffer, sizeof buffer, object, 1);
  return buffer;
}

std::string Certificate::signature_digest() const {
  int md_nid = NID_undef;
  // X509_get_signature_info also reads the digest inside RSA-PSS parameters.
  if (X509_get_signature_info(cert_.get(), &md_nid, nullptr, nullptr, nullptr) != 1 || md_nid == NID_undef) {
    ERR_clear_error();
    return {};
  }
  return OBJ_nid2sn(md_nid);
}

bool Certificate::carries_name(std::string_view name) const {
  const std::string text(name);
  if (text.empty()) return false;
  ossl::Asn1OctetString ip(a2i_IPADDRESS(text.c_str()));
  ERR_clear_error();
  if (ip) return X509_check_ip(cert_.get(), ASN1_STRING_get0_data(ip.get()), static_cast<std::size_t>(ASN1_STRING_length(ip.get())), 0) == 1;
  return X509_check_host(cert_.get(), text.c_str(), text.size(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                         nullptr) == 1;
}

bool Certificate::has_weak_signature() const {
  int md_nid = NID_undef;
  if (X509_get_signature_info(cert_.get(), &md_nid, nullptr, nullptr, nullptr) != 1) {
    ERR_clear_error();
    // An algorithm OpenSSL cannot name by digest: judged by its name alone.
    const auto name = signature_algorithm();
    return name.find("sha1") != std::string::npos || name.find("SHA1") != std::string::npos || name.find("md5") != std::string::npos;
  }
  return md_nid == NID_sha1 || md_nid == NID_md5 || md_nid == NID_md4 || md_nid == NID_md2 || md_nid == NID_md5_sha1;
}

PublicKey Certificate::public_key() const {
  return PublicKey::borrow_shared(X509_get0_pubkey(cert_.get()), X509_get_X509_PUBKEY(cert_.get()));
}

bool Certificate::signed_by(const PublicKey& issuer_key) const {
  ossl::ErrorQueueGuard guard;
  return X509_verify(cert_.get(), issuer_key.native()) == 1;
}

std::string Certificate::sha256_fingerprint() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert_.get(), EVP_sha256(), md, &len);
  return to_hex(ByteView(md, len), ":");
}

std::string Certificate::to_text() const {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  X509_print_ex(bio.get(), cert_.get(), XN_FLAG_ONELINE, 0);
  return ossl::bio_to_string(bio.get());
}

}  // namespace estlab
