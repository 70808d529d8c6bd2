// PKCS#10 certification requests. Csr::from_der checks the self-signature unless told not to
// (serverkeygen ignores it, RFC 7030 4.4.1), so a Csr normally proves possession of its key.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/extensions.hpp"
#include "estlab/core/key.hpp"
#include "estlab/core/name.hpp"

namespace estlab {

// How a PKCS#9 DirectoryString attribute is encoded; RFC 7030's examples use PrintableString.
enum class StringEncoding { printable, utf8 };

class Csr {
 public:
  enum class SignatureCheck { required, skip };

  static Result<Csr> from_der(ByteView der, SignatureCheck check = SignatureCheck::required);
  // DER, PEM ("CERTIFICATE REQUEST" / "NEW CERTIFICATE REQUEST") or base64.
  static Result<Csr> parse(ByteView data, SignatureCheck check = SignatureCheck::required);

  const Bytes& der() const { return der_; }
  std::string pem() const;

  DistinguishedName subject() const;
  PublicKey public_key() const;
  bool signature_valid() const { return signature_valid_; }
  std::string signature_algorithm() const;

  std::vector<RawExtension> requested_extensions() const;
  std::vector<SubjectAltName> subject_alt_names() const;
  std::vector<std::string> requested_extended_key_usages() const;
  std::optional<std::uint32_t> requested_key_usage() const;

  std::optional<std::string> challenge_password() const;
  std::optional<StringEncoding> challenge_password_encoding() const;
  std::optional<std::string> unstructured_name() const;
  std::optional<std::string> unstructured_address() const;
  std::vector<std::string> attribute_oids() const;  // every attribute's type, dotted
  // The DER of the first value of the attribute `oid` (dotted); nullopt when absent.
  std::optional<Bytes> attribute_value_der(std::string_view oid) const;

  std::string to_text() const;
  X509_REQ* native() const { return req_.get(); }

 private:
  friend class CsrBuilder;  // hands over the request it built, without parsing its own DER again
  std::optional<std::string> string_attribute(int nid) const;
  std::shared_ptr<X509_REQ> req_;
  Bytes der_;
  bool signature_valid_ = false;
};

class CsrBuilder {
 public:
  CsrBuilder& subject(DistinguishedName name);
  CsrBuilder& add_subject_alt_name(SubjectAltName san);
  CsrBuilder& add_extended_key_usage(std::string oid);
  CsrBuilder& key_usage(std::uint32_t bits);
  CsrBuilder& add_extension(RawExtension raw);
  CsrBuilder& challenge_password(std::string value, StringEncoding encoding = StringEncoding::printable);
  CsrBuilder& unstructured_name(std::string value);
  CsrBuilder& unstructured_address(std::string value);
  // Any other attribute, its one value given as a DER element (e.g. RFC 7030 4.4.1's
  // DecryptKeyIdentifier, an OCTET STRING).
  CsrBuilder& add_attribute(std::string oid, Bytes value_der);

  Result<Csr> sign(const PrivateKey& key) const;

 private:
  DistinguishedName subject_;
  std::vector<SubjectAltName> sans_;
  std::vector<std::string> ekus_;
  std::optional<std::uint32_t> key_usage_;
  std::vector<RawExtension> extra_;
  std::optional<std::pair<std::string, StringEncoding>> challenge_password_;
  std::optional<std::string> unstructured_name_;
  std::optional<std::string> unstructured_address_;
  std::vector<std::pair<std::string, Bytes>> attributes_;
};

// The same DER with the signature's last byte flipped: a well-formed CSR whose POP fails.
Bytes with_corrupted_signature(ByteView der);

}  // namespace estlab
