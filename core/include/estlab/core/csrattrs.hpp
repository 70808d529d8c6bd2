// The CSR Attributes response (RFC 7030 4.5.2, RFC 8951 4, RFC 9908): what an EST server asks
// a client to put into its next CSR.
//   CsrAttrs  ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//   AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//   Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE (1..MAX) OF ANY }
// The body comes from the network, so decoding is strict DER (definite, minimal lengths, nothing
// after the outer SEQUENCE, every value a well-formed DER tree) and every error names the entry.
// One leniency: SET OF order is not checked, and der() is the body exactly as received.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"
#include "estlab/core/extensions.hpp"
#include "estlab/core/key.hpp"

namespace estlab {

// One AttrOrOID. A bare OID has no values; an Attribute has at least one, each one DER element.
struct CsrAttrEntry {
  std::string oid;  // dotted
  std::optional<std::vector<Bytes>> values;

  bool is_attribute() const { return values.has_value(); }
  bool operator==(const CsrAttrEntry&) const = default;
};

class CsrAttrs {
 public:
  static Result<CsrAttrs> from_der(ByteView der);
  // DER or base64 (an EST body, RFC 8951).
  static Result<CsrAttrs> parse(ByteView data);

  const Bytes& der() const { return der_; }
  const std::vector<CsrAttrEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  // Whether some entry (bare OID or Attribute type) is this OID; a name or dotted form.
  bool contains_oid(std::string_view oid_or_name) const;
  // The first Attribute of this type; nullptr when there is none.
  const CsrAttrEntry* find_attribute(std::string_view oid_or_name) const;

  // RFC 9908 key-type requirements: id-ecPublicKey { curve OID } -> the curve, dotted;
  // rsaEncryption { INTEGER } -> the modulus size.
  std::optional<std::string> required_ec_curve() const;
  std::optional<int> required_rsa_bits() const;
  // The key type those requirements name (a P-256/P-384 curve, a 2048/3072/4096-bit modulus, a
  // bare Ed25519 OID); nullopt when none or another.
  std::optional<KeyType> required_key_type() const;
  // Extension types the server asks for in extensionRequest: bare OID values (RFC 7030 A.2 style)
  // and the extnIDs of an Extensions value (RFC 9908 style), dotted, in order.
  std::vector<std::string> extension_request_oids() const;

  // One line per entry in the spec syntax of parse_csrattrs_spec (see there), so a line can be
  // pasted into a configuration: "challengePassword", "id-ecPublicKey=secp384r1".
  std::string to_text() const;
  // The same items joined with ", ": parse_csrattrs_spec(to_spec()) gives the same DER.
  std::string to_spec() const;

  bool operator==(const CsrAttrs& other) const { return der_ == other.der_; }

 private:
  friend class CsrAttrsBuilder;
  std::vector<CsrAttrEntry> entries_;
  Bytes der_;
};

// How a CsrAttrs answer follows the RFC 9908 clarification of RFC 7030 4.5.2. Each finding names
// its rule: "csrattrs-3.2-a" (extensions: one extensionRequest attribute holding one Extensions
// without a repeated extnID), "csrattrs-3.2-b" (a key type: one attribute of the key-algorithm
// OID whose values are its parameters), "7030-4.5.2-f" (the shape: signature schemes as bare OIDs,
// key algorithms as attributes, extensions inside extensionRequest). `legacy` marks forms RFC
// 7030's own examples use (a bare curve OID, a bare OID inside extensionRequest): tolerated with a
// warning, where the rest is a violation.
struct CsrAttrsFinding {
  std::string rule;
  bool legacy = false;
  std::string what;
};
std::vector<CsrAttrsFinding> lint_csrattrs(const CsrAttrs& attrs);

// Builds a CsrAttrs entry by entry, in order. OIDs are dotted or names OpenSSL knows (plus
// "macAddress" and "extensionRequest"); a bad one is reported by build(), which names the entry.
class CsrAttrsBuilder {
 public:
  CsrAttrsBuilder& add_oid(std::string_view oid_or_name);
  // Each value must be one complete DER element.
  CsrAttrsBuilder& add_attribute(std::string_view oid_or_name, std::vector<Bytes> values_der);
  // id-ecPublicKey { curve }, e.g. "secp384r1" or "1.3.132.0.34".
  CsrAttrsBuilder& require_ec_curve(std::string_view curve);
  // rsaEncryption { INTEGER bits }.
  CsrAttrsBuilder& require_rsa_bits(int bits);
  // extensionRequest { Extensions }: one Extensions value holding these extensions. An empty
  // value_der leaves the extnValue empty: the server names the type, the client fills it in.
  CsrAttrsBuilder& add_extension_request(const std::vector<RawExtension>& extensions);

  Result<CsrAttrs> build() const;

 private:
  void fail(std::string message);
  std::vector<CsrAttrEntry> entries_;
  std::optional<Error> error_;
};

// Parses the text form configuration uses:
//   spec  := item ("," item)*          whitespace around items is ignored; "" is the empty CsrAttrs
//   item  := OID                        a bare OID (AttrOrOID.oid)
//          | OID "=" value ("+" value)* an Attribute with these values, in order
//   OID   := a dotted OID, a name OpenSSL knows ("challengePassword", "secp384r1"), macAddress
//            or extensionRequest
//   value := OID                        OBJECT IDENTIFIER          id-ecPublicKey=secp384r1
//          | ["-"] digits               INTEGER                    rsaEncryption=3072
//          | '"' text '"'               UTF8String; \" and \\ escape   1.2.3.4="hello"
//          | "ext(" OID (" " OID)* ")"  one Extensions value whose extensions have an empty
//                                       extnValue (the client fills them in)
//                                                                  extensionRequest=ext(subjectAltName)
//          | "der:" hex                 one DER element, verbatim  1.2.3.4=der:0500
// Example, RFC 7030 A.2: "challengePassword, id-ecPublicKey=secp384r1,
//   extensionRequest=macAddress, ecdsa-with-SHA384". Errors name the item and what is wrong in it.
Result<CsrAttrs> parse_csrattrs_spec(std::string_view spec);

// The spec items that ask for `type` and the signature scheme that goes with it (RFC 9908 3.2
// form): "ecdsa-with-SHA384, id-ecPublicKey=secp384r1".
std::string key_type_csrattrs_spec(KeyType type);

}  // namespace estlab
