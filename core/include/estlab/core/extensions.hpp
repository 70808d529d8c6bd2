// X.509 extensions shared by certificates and CSRs: building them (CSR builder, CA) and reading them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab {

struct SubjectAltName {
  enum class Kind { dns, ip, email, uri, other };
  Kind kind = Kind::dns;
  std::string value;  // text form: "device-1.example", "192.0.2.1", "2001:db8::1"

  static SubjectAltName dns(std::string v) { return {Kind::dns, std::move(v)}; }
  static SubjectAltName ip(std::string v) { return {Kind::ip, std::move(v)}; }
  static SubjectAltName email(std::string v) { return {Kind::email, std::move(v)}; }
  static SubjectAltName uri(std::string v) { return {Kind::uri, std::move(v)}; }
  // "DNS:x", "IP:1.2.3.4", "email:a@b", "URI:coap://x"
  static Result<SubjectAltName> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const SubjectAltName&) const = default;
};

// KeyUsage bits as X509_get_key_usage() reports them.
namespace key_usage {
inline constexpr std::uint32_t digital_signature = KU_DIGITAL_SIGNATURE;
inline constexpr std::uint32_t non_repudiation = KU_NON_REPUDIATION;
inline constexpr std::uint32_t key_encipherment = KU_KEY_ENCIPHERMENT;
inline constexpr std::uint32_t data_encipherment = KU_DATA_ENCIPHERMENT;
inline constexpr std::uint32_t key_agreement = KU_KEY_AGREEMENT;
inline constexpr std::uint32_t key_cert_sign = KU_KEY_CERT_SIGN;
inline constexpr std::uint32_t crl_sign = KU_CRL_SIGN;
std::string to_string(std::uint32_t bits);
Result<std::uint32_t> parse(std::string_view comma_separated);  // "digitalSignature,keyEncipherment"
}  // namespace key_usage

// An extension as raw parts (what a CSR requests, or an arbitrary one to add).
struct RawExtension {
  std::string oid;  // dotted
  bool critical = false;
  Bytes value_der;  // the extnValue contents
};

namespace ext {
Result<ossl::X509Extension> subject_alt_name(const std::vector<SubjectAltName>& names, bool critical = false);
Result<ossl::X509Extension> extended_key_usage(const std::vector<std::string>& oids, bool critical = false);
Result<ossl::X509Extension> key_usage(std::uint32_t bits, bool critical = true);
Result<ossl::X509Extension> basic_constraints(bool ca, std::optional<int> path_length, bool critical = true);
Result<ossl::X509Extension> certificate_policies(const std::vector<std::string>& oids);
Result<ossl::X509Extension> raw(const RawExtension& raw);

std::vector<SubjectAltName> read_subject_alt_names(const STACK_OF(X509_EXTENSION) * exts);
std::vector<std::string> read_extended_key_usages(const STACK_OF(X509_EXTENSION) * exts);
std::vector<RawExtension> read_all(const STACK_OF(X509_EXTENSION) * exts);
}  // namespace ext

}  // namespace estlab
