// A small strict DER reader and writer for the structures OpenSSL has no type for (CMC's PKIData
// and PKIResponse, the CSR Attributes response). Reading is checking: indefinite lengths,
// non-minimal or overlong lengths, multi-byte tags and elements running past their buffer are
// errors (see der_element_length), and so is nesting deeper than a limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "estlab/core/bytes.hpp"

namespace estlab::der {

// Universal tags (X.690 8.1.2), as single identifier octets.
inline constexpr std::uint8_t kBoolean = 0x01;
inline constexpr std::uint8_t kInteger = 0x02;
inline constexpr std::uint8_t kBitString = 0x03;
inline constexpr std::uint8_t kOctetString = 0x04;
inline constexpr std::uint8_t kNull = 0x05;
inline constexpr std::uint8_t kOid = 0x06;
inline constexpr std::uint8_t kUtf8String = 0x0c;
inline constexpr std::uint8_t kPrintableString = 0x13;
inline constexpr std::uint8_t kIa5String = 0x16;
inline constexpr std::uint8_t kSequence = 0x30;
inline constexpr std::uint8_t kSet = 0x31;

// Nesting deeper than this in a value received from a peer is an attack, not data.
inline constexpr int kMaxDepth = 32;

inline bool is_constructed(std::uint8_t tag) { return (tag & 0x20) != 0; }

// "SEQUENCE", "[0]", "tag 0x5f": for error messages.
std::string tag_name(std::uint8_t tag);

// One element: its tag, its content octets and the whole encoding (tag, length and content).
// Both views borrow from the buffer the Reader was given.
struct Element {
  std::uint8_t tag = 0;
  ByteView content;
  ByteView whole;
};

// Consecutive DER elements of one buffer, read front to back. `what` names the element expected
// next in errors ("PKIData reqSequence: ..."); a missing element is "<what> is missing".
class Reader {
 public:
  explicit Reader(ByteView data) : rest_(data) {}
  // The elements would point into a buffer destroyed at the end of the statement.
  explicit Reader(Bytes&& data) = delete;

  bool empty() const { return rest_.empty(); }
  std::size_t remaining() const { return rest_.size(); }
  std::optional<std::uint8_t> peek_tag() const;

  Result<Element> next(const std::string& what);
  // next() that also requires `tag`: "<what>: SET where SEQUENCE was expected".
  Result<Element> expect(std::uint8_t tag, const std::string& what);

 private:
  ByteView rest_;
};

// Exactly one element with `tag` filling all of `data`: "<what>: 3 trailing bytes after the SEQUENCE".
Result<Element> read_single(ByteView data, std::uint8_t tag, const std::string& what);
Result<Element> read_single(Bytes&& data, std::uint8_t tag, const std::string& what) = delete;  // as Reader(Bytes&&)

// Every element in `data` well-formed, constructed ones walked down to `max_depth` levels.
Result<void> check_tree(ByteView data, int max_depth = kMaxDepth);
// Exactly one well-formed element, walked as check_tree does: what a caller may hand us as "the DER
// of one value".
Result<void> check_one_element(ByteView data, int max_depth = kMaxDepth);

// The dotted form of an OBJECT IDENTIFIER element; errors name `what`.
Result<std::string> decode_oid(const Element& element, const std::string& what);
// The value of a minimally encoded INTEGER of at most 8 content octets; nullopt when the element
// is not one.
std::optional<std::int64_t> decode_integer(const Element& element);

// --- writing

// tag, minimal definite length, content.
Bytes encode_tlv(std::uint8_t tag, ByteView content);
inline Bytes encode_sequence(ByteView content) { return encode_tlv(kSequence, content); }
inline Bytes encode_octet_string(ByteView content) { return encode_tlv(kOctetString, content); }
inline Bytes encode_utf8_string(std::string_view text) { return encode_tlv(kUtf8String, as_bytes(text)); }
// Two's complement, big-endian, minimal.
Bytes encode_integer(std::int64_t value);

// "1.2.840": two or more arcs, the first 0..2, decimal digits without leading zeros.
bool is_dotted_oid(std::string_view text);
// The OBJECT IDENTIFIER element of a dotted OID; empty when `dotted` is not one.
Bytes encode_oid(std::string_view dotted);

// X.690 11.6 order of SET OF elements: by their encodings, the shorter padded with zero octets.
bool set_of_less(const Bytes& a, const Bytes& b);
// Sorts elements into that order (stable, so equal encodings keep their places).
void sort_set_of(std::vector<Bytes>& elements);
// SET OF `elements` in DER order.
Bytes encode_set_of(std::vector<Bytes> elements);

inline void append(Bytes& out, ByteView part) { out.insert(out.end(), part.begin(), part.end()); }

}  // namespace estlab::der
