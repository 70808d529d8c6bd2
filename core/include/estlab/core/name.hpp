// X.509 distinguished names as values.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/ossl.hpp"

namespace estlab {

class DistinguishedName {
 public:
  struct Attribute {
    std::string type;   // short name ("CN") or dotted OID
    std::string value;  // UTF-8
  };

  DistinguishedName();  // the empty name

  // "CN=device-1,O=Example" (RFC 4514 order as written is the encoded order) or "/O=Example/CN=device-1".
  // Backslash escapes ',', '+', '=', '/', '\\'. Errors name the offending attribute.
  static Result<DistinguishedName> parse(std::string_view text);
  static Result<DistinguishedName> from_der(ByteView der);
  static Result<DistinguishedName> from_native(const X509_NAME* name);

  const std::vector<Attribute>& attributes() const { return attributes_; }
  std::optional<std::string> common_name() const;
  bool empty() const { return attributes_.empty(); }

  // Canonical text: attributes in encoded order, "type=value" joined by ",", specials escaped.
  std::string to_string() const;
  const Bytes& der() const { return der_; }
  ossl::X509Name to_native() const;

  // Equality as RFC 5280 name matching in OpenSSL (case-folded, whitespace-normalised).
  bool operator==(const DistinguishedName& other) const;

 private:
  std::vector<Attribute> attributes_;
  Bytes der_;
};

}  // namespace estlab
