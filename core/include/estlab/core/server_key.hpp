// Server-generated keys delivered encrypted (RFC 7030 4.4.1.2 / 4.4.2, RFC 5958 section 4): the
// private key in an AsymmetricKeyPackage, signed (SignedData) by the party that generated it, and
// that SignedData enveloped (EnvelopedData) to the client's key: ktri for an RSA certificate,
// kari for an EC one. The gateway wraps, the judge unwraps with the device's key and reports what
// it found, so both sides read the same structure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/certificate.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/result.hpp"

namespace estlab {

namespace oid {
inline constexpr std::string_view smime_capabilities = "1.2.840.113549.1.9.15";           // RFC 8551 2.5.2
inline constexpr std::string_view decrypt_key_identifier = "1.2.840.113549.1.9.16.2.37";  // RFC 4108, RFC 7030 4.4.1.1
inline constexpr std::string_view asymmetric_decrypt_key_identifier = "1.2.840.113549.1.9.16.2.54";  // RFC 7030 4.4.1.2
inline constexpr std::string_view asymmetric_key_package = "2.16.840.1.101.2.1.2.78.5";  // id-ct-KP-aKeyPackage, RFC 5958
inline constexpr std::string_view aes128_cbc = "2.16.840.1.101.3.4.1.2";
inline constexpr std::string_view aes128_wrap = "2.16.840.1.101.3.4.1.5";
inline constexpr std::string_view aes256_cbc = "2.16.840.1.101.3.4.1.42";
inline constexpr std::string_view aes256_wrap = "2.16.840.1.101.3.4.1.45";
inline constexpr std::string_view ecdh_std_sha1kdf = "1.3.133.16.840.63.0.2";  // dhSinglePass-stdDH-sha1kdf-scheme
inline constexpr std::string_view ecdh_std_sha256kdf = "1.3.132.1.11.1";       // dhSinglePass-stdDH-sha256kdf-scheme
}  // namespace oid

// The identifier RFC 7030 4.4.1.2 names a client's key by: the certificate's subjectKeyIdentifier,
// else RFC 5280 4.2.1.2 method 1 (SHA-1 of the subjectPublicKey BIT STRING).
Bytes key_identifier(const Certificate& certificate);

// RFC 7030 4.4.1.2: a key bound to a certificate receives an encrypted key only when its use is
// unrestricted (no keyUsage) or allows keyAgreement (EC) or keyEncipherment (RSA). "" when it
// may; else why not.
std::string key_recipient_problem(const Certificate& certificate);

// The SMIMECapabilities attribute value (SEQUENCE OF SEQUENCE { capabilityID }) and back.
Bytes encode_smime_capabilities(const std::vector<std::string>& oids);
Result<std::vector<std::string>> parse_smime_capabilities(ByteView der);

// What a client asking for an encrypted key lists when it does not say otherwise: AES-128/256
// content encryption with their key wraps, RSA key transport and the ECDH agreements OpenSSL uses.
const std::vector<std::string>& default_smime_capabilities();

// Why envelope_server_key cannot serve a client listing `capabilities` ("" when it can).
std::string capabilities_problem(const std::vector<std::string>& capabilities);

// The EnvelopedData ContentInfo (DER) holding SignedData(AsymmetricKeyPackage{key}), signed with
// signer_key/signer_certificate and encrypted to `recipient` (its subjectKeyIdentifier as rid
// when it has one). The content encryption is the strongest AES-CBC the client listed whose key
// wrap it listed too; none listed is an error naming the capabilities.
Result<Bytes> envelope_server_key(const PrivateKey& key, const PrivateKey& signer_key, const Certificate& signer_certificate,
                                  const Certificate& recipient, const std::vector<std::string>& capabilities);

// What unwrapping an encrypted key part found.
struct UnwrappedServerKey {
  std::string recipient_info;                // "ktri", "kari", "kekri", "kemri", "pwri", "ori"
  int recipient_version = -1;
  std::string key_encryption_algorithm;      // dotted OID
  std::string key_wrap_algorithm;            // kari: the wrap named in its parameters; "" otherwise
  std::string content_encryption_algorithm;  // dotted OID
  std::string enveloped_content_type;        // what the EnvelopedData says it holds (id-signedData)
  std::string signed_content_type;           // the SignedData's eContentType (id-ct-KP-aKeyPackage)
  std::optional<PrivateKey> key;             // the first OneAsymmetricKey, when it parsed
};

// Decrypts `enveloped_der` (a ContentInfo of EnvelopedData) with the recipient's key and
// certificate, checks the inner SignedData's signature (not its signer's path), and reads the
// key package. Errors say which layer was wrong.
Result<UnwrappedServerKey> open_server_key(ByteView enveloped_der, const PrivateKey& recipient_key,
                                           const Certificate& recipient_certificate);

}  // namespace estlab
