// PEM, DER and base64 detection and conversion: what a user hands us in a file may be any of them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"

namespace estlab {

enum class Encoding { der, pem, base64, unknown };
const char* to_string(Encoding encoding);

// DER: a single complete TLV starting with SEQUENCE; PEM: a "-----BEGIN " line; base64: only
// base64 characters and whitespace.
Encoding detect_encoding(ByteView data);

// Length of the outermost DER TLV starting at data[0], or an error saying why it is not one.
Result<std::size_t> der_element_length(ByteView data);

struct PemBlock {
  std::string label;  // "CERTIFICATE", "PRIVATE KEY", ...
  Bytes der;
};

std::string pem_encode(std::string_view label, ByteView der);

// All PEM blocks in text. Errors say which block and line: "PEM block 2 (CERTIFICATE) at line 14: ...".
Result<std::vector<PemBlock>> pem_decode_all(std::string_view text);

// The DER of one object given as DER, PEM (with one of `labels`) or bare base64.
// `what` names the object in errors ("certificate", "CSR").
Result<Bytes> to_der(ByteView data, const std::vector<std::string_view>& labels, std::string_view what);

}  // namespace estlab
