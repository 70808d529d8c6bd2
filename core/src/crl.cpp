#include "estlab/core/crl.hpp"

#include <array>

#include "estlab/core/certificate.hpp"
#include "estlab/core/encoding.hpp"

namespace estlab {
namespace {

constexpr std::array<std::pair<RevocationReason, std::string_view>, 10> kReasonNames = {{
    {RevocationReason::unspecified, "unspecified"},
    {RevocationReason::key_compromise, "keyCompromise"},
    {RevocationReason::ca_compromise, "cACompromise"},
    {RevocationReason::affiliation_changed, "affiliationChanged"},
    {RevocationReason::superseded, "superseded"},
    {RevocationReason::cessation_of_operation, "cessationOfOperation"},
    {RevocationReason::certificate_hold, "certificateHold"},
    {RevocationReason::remove_from_crl, "removeFromCRL"},
    {RevocationReason::privilege_withdrawn, "privilegeWithdrawn"},
    {RevocationReason::aa_compromise, "aACompromise"},
}};

std::string fold(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '-' || c == '_') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::string_view to_string(RevocationReason reason) {
  for (auto [r, name] : kReasonNames) {
    if (r == reason) return name;
  }
  return "unknown";
}

Result<RevocationReason> parse_revocation_reason(std::string_view text) {
  std::string valid;
  for (auto [r, name] : kReasonNames) {
    if (fold(name) == fold(text) || std::to_string(static_cast<int>(r)) == text) return r;
    valid += (valid.empty() ? "" : ", ") + std::string(name);
  }
  return make_error(ErrorCode::invalid_input, "unknown revocation reason '" + std::string(text) + "' (valid: " + valid + ")");
}

Result<Crl> Crl::from_der(ByteView der) {
  ossl::ErrorQueueGuard guard;
  const unsigned char* p = der.data();
  X509_CRL* raw = d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size()));
  if (raw == nullptr) return ossl::error(ErrorCode::invalid_input, "CRL: not a DER X.509 CRL");
  Crl crl;
  crl.crl_ = std::shared_ptr<X509_CRL>(raw, ossl::Deleter<X509_CRL_free>{});
  if (p != der.data() + der.size()) return make_error(ErrorCode::invalid_input, "CRL: trailing bytes after the DER CRL");
  crl.der_.assign(der.begin(), der.end());
  return crl;
}

Result<Crl> Crl::parse(ByteView data) {
  auto der = to_der(data, {"X509 CRL"}, "CRL");
  if (!der.ok()) return der.error();
  return from_der(*der);
}

Crl Crl::borrow_shared(X509_CRL* crl) {
  X509_CRL_up_ref(crl);
  Crl out;
  out.crl_ = std::shared_ptr<X509_CRL>(crl, ossl::Deleter<X509_CRL_free>{});
  out.der_ = ossl::i2d_bytes(i2d_X509_CRL, crl);
  return out;
}

std::string Crl::pem() const { return pem_encode("X509 CRL", der_); }

DistinguishedName Crl::issuer() const {
  auto name = DistinguishedName::from_native(X509_CRL_get_issuer(crl_.get()));
  return name.ok() ? std::move(name).value() : DistinguishedName{};
}

TimePoint Crl::this_update() const { return to_time_point(X509_CRL_get0_lastUpdate(crl_.get())); }

std::optional<TimePoint> Crl::next_update() const {
  const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl_.get());
  if (t == nullptr) return std::nullopt;
  return to_time_point(t);
}

std::optional<long long> Crl::crl_number() const {
  ossl::Asn1Integer number(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl_.get(), NID_crl_number, nullptr, nullptr)));
  if (!number) return std::nullopt;
  return ASN1_INTEGER_get(number.get());
}

std::vector<RevokedEntry> Crl::entries() const {
  std::vector<RevokedEntry> out;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl_.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
    RevokedEntry entry;
    entry.serial_hex = serial_to_hex(X509_REVOKED_get0_serialNumber(r));
    entry.revoked_at = to_time_point(X509_REVOKED_get0_revocationDate(r));
    ossl::Asn1String reason(static_cast<ASN1_STRING*>(X509_REVOKED_get_ext_d2i(r, NID_crl_reason, nullptr, nullptr)));
    if (reason) entry.reason = static_cast<RevocationReason>(ASN1_ENUMERATED_get(reason.get()));
    out.push_back(std::move(entry));
  }
  return out;
}

std::optional<RevokedEntry> Crl::find(std::string_view serial_hex) const {
  for (auto& e : entries()) {
    if (e.serial_hex == serial_hex) return e;
  }
  return std::nullopt;
}

bool Crl::signed_by(const PublicKey& issuer_key) const {
  ossl::ErrorQueueGuard guard;
  return X509_CRL_verify(crl_.get(), issuer_key.native()) == 1;
}

std::string Crl::to_text() const {
  ossl::Bio bio(BIO_new(BIO_s_mem()));
  X509_CRL_print_ex(bio.get(), crl_.get(), XN_FLAG_ONELINE);
  return ossl::bio_to_string(bio.get());
}

}  // namespace estlab
