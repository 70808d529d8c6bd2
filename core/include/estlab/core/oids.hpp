// Object identifiers the suite names, in dotted form (the form reports and scenario files use).
#pragma once

#include <string>
#include <string_view>

namespace estlab::oid {

inline constexpr std::string_view server_auth = "1.3.6.1.5.5.7.3.1";
inline constexpr std::string_view client_auth = "1.3.6.1.5.5.7.3.2";
inline constexpr std::string_view code_signing = "1.3.6.1.5.5.7.3.3";
inline constexpr std::string_view email_protection = "1.3.6.1.5.5.7.3.4";
inline constexpr std::string_view cmc_ra = "1.3.6.1.5.5.7.3.28";  // id-kp-cmcRA (RFC 6402)
inline constexpr std::string_view challenge_password = "1.2.840.113549.1.9.7";
inline constexpr std::string_view unstructured_name = "1.2.840.113549.1.9.2";
inline constexpr std::string_view unstructured_address = "1.2.840.113549.1.9.8";
inline constexpr std::string_view extension_request = "1.2.840.113549.1.9.14";

// The certificate policy that marks a certificate as carrying the gateway's "officer role"
// (PG-AUTH-3). The product encodes the role in its own database; the lab encodes it as a policy
// under the 2.999 example arc so any tool can see it. Configurable in est.properties.
inline constexpr std::string_view estlab_officer_role = "2.999.7030.1.1";

// Dotted form of a name or OID ("clientAuth" -> "1.3.6.1.5.5.7.3.2"); empty when unknown.
std::string to_dotted(std::string_view name_or_oid);
// Short name when OpenSSL knows one ("1.3.6.1.5.5.7.3.2" -> "clientAuth"), else the dotted form.
std::string short_name(std::string_view dotted);

// CMC (RFC 5272): the Full PKI Request and Response content types and the status controls.
inline constexpr std::string_view cct_pki_data = "1.3.6.1.5.5.7.12.2";
inline constexpr std::string_view cct_pki_response = "1.3.6.1.5.5.7.12.3";
inline constexpr std::string_view cmc_status_info = "1.3.6.1.5.5.7.7.1";
inline constexpr std::string_view cmc_status_info_v2 = "1.3.6.1.5.5.7.7.25";
// CSR attributes (RFC 7030 4.5.2, RFC 9908): key-type requirements and the A.2 example's macAddress.
inline constexpr std::string_view id_ec_public_key = "1.2.840.10045.2.1";
inline constexpr std::string_view rsa_encryption = "1.2.840.113549.1.1.1";
inline constexpr std::string_view mac_address = "1.3.6.1.1.1.1.22";  // RFC 2307; OpenSSL has no name for it
inline constexpr std::string_view subject_key_identifier = "2.5.29.14";

}  // namespace estlab::oid
